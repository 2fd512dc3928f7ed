"""The display protocol: displays appear while the cell runs, in order, and can be updated in place;
nbclient saves a notebook holding the final state."""

import nbformat
from nbclient import NotebookClient

CELL = r'''
println!("FASTAI_DISPLAY {}", r#"{"op":"display","id":"bar","data":{"text/plain":"0%"}}"#);
for i in 1..=3 {
    std::thread::sleep(std::time::Duration::from_millis(100));
    println!("FASTAI_DISPLAY {{\"op\":\"update\",\"id\":\"bar\",\"data\":{{\"text/plain\":\"{}%\"}}}}", i * 33);
}
println!("FASTAI_DISPLAY {}", r#"{"op":"display","data":{"text/plain":"second output"}}"#);
println!("plain line");
std::thread::sleep(std::time::Duration::from_millis(1500));
'''


def test_displays_update_live_and_in_order(kernel):
    cell = kernel.run(CELL)
    arrivals, t_end = cell.arrivals, cell.seconds
    assert cell.status == "ok", cell.reply["content"]
    kinds = [(k, c) for _, k, c in arrivals if k in ("display_data", "update_display_data", "stream")]
    assert kinds[0][0] == "display_data"
    assert kinds[0][1]["transient"]["display_id"] == "bar"
    updates = [c for k, c in kinds if k == "update_display_data"]
    assert [u["data"]["text/plain"] for u in updates] == ["33%", "66%", "99%"]
    assert all(u["transient"]["display_id"] == "bar" for u in updates)
    # The second display comes after the updates, then the plain line.
    assert kinds[-2][0] == "display_data" and kinds[-2][1]["data"]["text/plain"] == "second output"
    assert kinds[-1][0] == "stream" and kinds[-1][1]["text"] == "plain line\n"
    # Live: the last update arrived well before the cell ended (it sleeps 1.5 s after it).
    last_update = max(t for t, k, _ in arrivals if k == "update_display_data")
    assert t_end - last_update > 1.0, (last_update, t_end)


def test_saved_notebook_holds_the_final_state(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(CELL))
    NotebookClient(nb, kernel_name="fastai-rust", timeout=600).execute()
    outputs = nb.cells[0].outputs
    texts = [o.get("data", {}).get("text/plain") or o.get("text") for o in outputs]
    assert texts == ["99%", "second output", "plain line\n"], texts


def test_library_displays_reach_the_notebook(kernel):
    code = r'''
let h = DisplayHandle::new(&Rich::text("step 0"));
for i in 1..=2 { h.update(&Rich::text(format!("step {i}"))); }
let png = fastai::display::figure::image_grid(&[(fastai::image::RgbImage::new(8, 8), "x".to_string())], 1, 1, (1.0, 1.0));
display(&Rich::png(png, "a figure"));
'''
    cell = kernel.run(code)
    assert cell.status == "ok", cell.reply["content"]
    shown = cell.of_type("display_data")
    assert shown[0]["data"]["text/plain"] == "step 0"
    assert [u["data"]["text/plain"] for u in cell.of_type("update_display_data")] == ["step 1", "step 2"]
    assert shown[1]["data"]["image/png"].startswith("iVBORw0KGgo")


def test_display_ids_differ_across_cells(kernel):
    # Each cell is compiled with its own copy of the library's statics: ids must still be unique.
    a = kernel.run('DisplayHandle::new(&Rich::text("a")).id().to_string()').result()
    b = kernel.run('DisplayHandle::new(&Rich::text("b")).id().to_string()').result()
    assert a != b


def test_the_live_loss_chart_grows_in_the_progress_display(kernel):
    # fastai's ShowGraph: off by default; switched on, every epoch (and every 4 batches) redraws
    # the chart inside the progress display - one display id, several updates with a chart.
    code = r'''
tch::manual_seed(0);
let x = Tensor::randn([256, 2], (Kind::Float, Device::Cpu));
let y = x.sum_dim_intlist(1, false, Kind::Float).gt(0.0).to_kind(Kind::Int64);
let data = DataBunch::from_tensors((x.narrow(0, 0, 192), y.narrow(0, 0, 192)), (x.narrow(0, 192, 64), y.narrow(0, 192, 64)), 16)?.to_device(Device::Cpu);
let model = Net::new(Device::Cpu, |p| nn::seq().add(nn::linear(p / "fc", 2, 2, Default::default())));
let mut learn = Learner::new(data, model, cross_entropy_flat(), &[accuracy])?;
learn.fit(1, 1e-2)?;
learn.show_graph_every(Some(4));
learn.fit(3, 1e-2)?;
'''
    cell = kernel.run(code)
    assert cell.status == "ok", cell.reply["content"]
    shown = [m for m in cell.of_type("display_data") if "train_loss" in m["data"].get("text/html", "")]
    assert len(shown) == 2, "one progress display per fit"
    first_id, second_id = (m["transient"]["display_id"] for m in shown)
    updates = lambda i: [u for u in cell.of_type("update_display_data") if u["transient"]["display_id"] == i]
    assert not any("data:image/png" in u["data"]["text/html"] for u in updates(first_id)), "off by default"
    charts = [u for u in updates(second_id) if "data:image/png;base64," in u["data"]["text/html"]]
    # 3 epochs x 12 batches: every 4 batches and after each epoch
    assert len(charts) >= 6, len(charts)
    assert "<table" in charts[-1]["data"]["text/html"], "the chart is under the table, in the same display"
