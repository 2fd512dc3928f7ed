"""Jupyter widgets and input() through the fastai kernel, driven as JupyterLab would through
jupyter_client: a widget's comm opens with ipywidgets 8 state and is displayed after it; the
frontend's `update` changes the value the next cell reads (and is echoed); a `custom` click runs
the Rust closure - while no cell runs, and while a cell runs; comm_info lists the open comms;
`fastai::input` asks through the stdin channel; the Stop button ends a running fit within a batch,
weights kept."""

import os
import time

import pytest

from helpers import Kernel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def send_comm(kernel, comm_id, data):
    """What JupyterLab sends when the user acts on a widget."""
    msg = kernel.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kernel.client.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def iopub_until(kernel, pred, timeout=20):
    """iopub messages (sent outside any cell) until one satisfies `pred`; all of them."""
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            m = kernel.client.get_iopub_msg(timeout=0.5)
        except Exception:
            continue
        seen.append(m)
        if pred(m):
            return seen
    raise AssertionError(f"not seen in {timeout} s: {[(m['msg_type'], m['content']) for m in seen]}")


def drain_iopub(kernel):
    while True:
        try:
            kernel.client.get_iopub_msg(timeout=0.3)
        except Exception:
            return


def opened(cell, model):
    """(comm_id, state) of the comm_open of `model` in a cell's output."""
    found = [m for m in cell.messages if m["msg_type"] == "comm_open"
             and m["content"]["data"]["state"].get("_model_name") == model]
    assert found, [m["msg_type"] for m in cell.messages]
    m = found[-1]
    return m["content"]["comm_id"], m["content"]["data"]["state"], m


def test_a_widget_opens_its_comm_with_valid_state_and_is_displayed_after_it(kernel):
    cell = kernel.run('use fastai::widgets::*;\n'
                      'let slider = IntSlider::new(3, 0, 10).description("epochs");\n'
                      'slider.display();')
    assert cell.status == "ok", cell.reply["content"]
    comm_id, state, msg = opened(cell, "IntSliderModel")
    assert msg["content"]["target_name"] == "jupyter.widget"
    assert msg["metadata"]["version"] == "2.1.0"
    assert state["_model_module"] == "@jupyter-widgets/controls"
    assert state["_model_module_version"] == "2.0.0"
    assert state["_view_name"] == "IntSliderView"
    assert (state["value"], state["min"], state["max"], state["step"]) == (3, 0, 10, 1)
    assert state["description"] == "epochs"
    assert msg["content"]["data"]["buffer_paths"] == []
    # layout and style are models of their own, opened before and referenced
    types = [m["msg_type"] for m in cell.messages]
    opens = {m["content"]["comm_id"]: (i, m["content"]["data"]["state"])
             for i, m in enumerate(cell.messages) if m["msg_type"] == "comm_open"}
    for key, model in [("layout", "LayoutModel"), ("style", "SliderStyleModel")]:
        ref = state[key]
        assert ref.startswith("IPY_MODEL_")
        i, s = opens[ref[len("IPY_MODEL_"):]]
        assert s["_model_name"] == model and i < opens[comm_id][0]
    assert opens[state["layout"][10:]][1]["_model_module"] == "@jupyter-widgets/base"
    # the view: after the comm_open, in the cell's output
    shown = [(i, m["content"]) for i, m in enumerate(cell.messages)
             if m["msg_type"] == "display_data" and WIDGET_VIEW in m["content"]["data"]]
    assert len(shown) == 1, types
    i, content = shown[0]
    view = content["data"][WIDGET_VIEW]
    assert view == {"model_id": comm_id, "version_major": 2, "version_minor": 0}
    assert "IntSlider(value=3" in content["data"]["text/plain"]
    assert i > opens[comm_id][0]
    # comm_info lists it
    reply = kernel.client.comm_info(target_name="jupyter.widget", reply=True)["content"]
    assert reply["status"] == "ok"
    assert reply["comms"][comm_id] == {"target_name": "jupyter.widget"}


def test_a_frontend_update_changes_the_value_the_next_cell_reads(kernel):
    cell = kernel.run('let lr = FloatLogSlider::new(1e-3, -6.0, 0.0, 0.1); lr.display();')
    comm_id, state, _ = opened(cell, "FloatLogSliderModel")
    assert state["base"] == 10.0 and state["value"] == pytest.approx(1e-3)
    drain_iopub(kernel)
    sent = send_comm(kernel, comm_id, {"method": "update", "state": {"value": 0.02}, "buffer_paths": []})
    seen = iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg"
                       and m["content"]["data"].get("method") == "echo_update")
    echo = seen[-1]
    assert echo["content"]["comm_id"] == comm_id
    assert echo["content"]["data"]["state"] == {"value": 0.02}
    assert echo["parent_header"]["msg_id"] == sent, "echoed as a child of the frontend's update"
    assert kernel.run("lr.value()").result() == "0.02"
    # the frontend asks for the whole state again (a page reload): an update with all of it
    drain_iopub(kernel)
    send_comm(kernel, comm_id, {"method": "request_state"})
    seen = iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg"
                       and m["content"]["data"].get("method") == "update")
    full = seen[-1]["content"]["data"]["state"]
    assert full["_model_name"] == "FloatLogSliderModel" and full["value"] == 0.02


def test_a_click_runs_the_closure_while_no_cell_runs(kernel):
    cell = kernel.run(r'''
let clicks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
let status = Label::new("not clicked");
let go = Button::new("Go");
{
    let (clicks, status) = (clicks.clone(), status.clone());
    go.on_click(move || {
        let n = clicks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        status.set_value(&format!("clicked {n}"));
    });
}
HBox::new(&[&go, &status]).display();
''')
    assert cell.status == "ok", cell.reply["content"]
    button, state, _ = opened(cell, "ButtonModel")
    label, _, _ = opened(cell, "LabelModel")
    box, box_state, _ = opened(cell, "HBoxModel")
    assert box_state["children"] == [f"IPY_MODEL_{button}", f"IPY_MODEL_{label}"]
    assert state["description"] == "Go"
    drain_iopub(kernel)
    for _ in range(2):
        send_comm(kernel, button, {"method": "custom", "content": {"event": "click"}})
    # the closure ran with no cell running: the label's new value went to the frontend
    seen = iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg"
                       and m["content"]["comm_id"] == label
                       and m["content"]["data"].get("state") == {"value": "clicked 2"})
    assert not [m for m in seen if m["msg_type"] == "status" and m["content"]["execution_state"] == "busy"
                and m["parent_header"].get("msg_type") == "execute_request"]
    assert kernel.run("clicks.load(std::sync::atomic::Ordering::SeqCst)").result() == "2"
    assert kernel.run("status.value()").result() == '"clicked 2"'


def test_a_click_reaches_a_cell_that_is_running(kernel):
    # the shell socket is read while a cell runs: the click arrives and the closure runs
    setup = kernel.run(r'''
let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
let b2 = Button::new("Now");
{ let seen = seen.clone(); b2.on_click(move || seen.store(true, std::sync::atomic::Ordering::SeqCst)); }
b2.display();
''')
    button, _, _ = opened(setup, "ButtonModel")
    sent = []

    def hook(msg):
        if not sent and msg["msg_type"] == "stream" and "waiting" in msg["content"].get("text", ""):
            sent.append(send_comm(kernel, button, {"method": "custom", "content": {"event": "click"}}))

    t0 = time.time()
    reply = kernel.client.execute_interactive(r'''
println!("waiting");
let t = std::time::Instant::now();
while !seen.load(std::sync::atomic::Ordering::SeqCst) && t.elapsed().as_secs() < 30 {
    std::thread::sleep(std::time::Duration::from_millis(20));
}
println!("clicked: {}", seen.load(std::sync::atomic::Ordering::SeqCst));
''', timeout=120, output_hook=hook)
    assert reply["content"]["status"] == "ok"
    assert sent, "the cell printed 'waiting'"
    assert time.time() - t0 < 20, "the click reached the running cell"
    assert kernel.run("seen.load(std::sync::atomic::Ordering::SeqCst)").result() == "true"


def test_a_dropdown_and_checkbox_follow_the_frontend(kernel):
    cell = kernel.run(r'''
let pet = Dropdown::new(&["cat", "dog", "bird"], Some("dog"))?;
let keep = Checkbox::new(true, "keep");
let picked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
{ let picked = picked.clone(); pet.on_change(move |v| picked.lock().unwrap().push(v)); }
VBox::new(&[&pet, &keep]).display();
''')
    assert cell.status == "ok", cell.reply["content"]
    dd, state, _ = opened(cell, "DropdownModel")
    assert state["_options_labels"] == ["cat", "dog", "bird"] and state["index"] == 1
    cb, cb_state, _ = opened(cell, "CheckboxModel")
    assert cb_state["value"] is True
    drain_iopub(kernel)
    send_comm(kernel, dd, {"method": "update", "state": {"index": 2}, "buffer_paths": []})
    send_comm(kernel, cb, {"method": "update", "state": {"value": False}, "buffer_paths": []})
    iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == cb
                and m["content"]["data"].get("method") == "echo_update")
    assert kernel.run("pet.value()").result() == 'Some("bird")'
    assert kernel.run("keep.value()").result() == "false"
    assert kernel.run("picked.lock().unwrap().clone()").result() == '["bird"]'


def test_an_image_travels_as_a_binary_buffer(kernel):
    cell = kernel.run('let img = Image::png(vec![0x89, b\'P\', b\'N\', b\'G\']); img.display();')
    comm_id, state, msg = opened(cell, "ImageModel")
    assert "value" not in state and state["format"] == "png"
    assert msg["content"]["data"]["buffer_paths"] == [["value"]]
    assert [bytes(b) for b in msg["buffers"]] == [b"\x89PNG"]


def test_input_asks_the_frontend():
    k = Kernel()
    try:
        asked = []

        def answer(msg):
            asked.append(msg["content"])
            k.client.input("Ada")

        out = []
        reply = k.client.execute_interactive(
            'let name = fastai::input("Your name: ")?;\nprintln!("hello {name}");',
            allow_stdin=True, stdin_hook=answer, timeout=300,
            output_hook=lambda m: out.append(m))
        assert reply["content"]["status"] == "ok", reply["content"]
        assert asked == [{"prompt": "Your name: ", "password": False}]
        text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
        assert "hello Ada" in text
        # a frontend that cannot answer (nbconvert): a clear error, not a hang
        cell = k.run('fastai::input("again: ")?')
        assert cell.status == "error"
        assert "allow_stdin" in cell.reply["content"]["evalue"]
    finally:
        k.close()


TRAIN = r'''
tch::manual_seed(0);
let x = Tensor::randn([4096, 2], (Kind::Float, Device::Cpu));
let y = x.sum_dim_intlist(1, false, Kind::Float).gt(0.0).to_kind(Kind::Int64);
let data = DataBunch::from_tensors((x.narrow(0, 0, 3840), y.narrow(0, 0, 3840)), (x.narrow(0, 3840, 256), y.narrow(0, 3840, 256)), 4)?.to_device(Device::Cpu);
let model = Net::new(Device::Cpu, |p| nn::seq().add(nn::linear(p / "fc", 2, 2, Default::default())));
let mut learn = Learner::new(data, model, cross_entropy_flat(), &[accuracy])?;
'''


def test_the_stop_button_ends_a_running_fit_within_a_batch(kernel):
    assert kernel.run(TRAIN).status == "ok"
    stop, clicked = [], []

    def hook(msg):
        c = msg["content"]
        if msg["msg_type"] == "comm_open" and c["data"]["state"].get("description") == "Stop":
            stop.append((time.time(), c["comm_id"], c["data"]["state"]))
        if stop and not clicked and time.time() - stop[0][0] > 1.5:
            clicked.append(time.time())
            send_comm(kernel, stop[0][1], {"method": "custom", "content": {"event": "click"}})

    out = []
    reply = kernel.client.execute_interactive(
        "learn.fit(50, 1e-2)?;", timeout=600,
        output_hook=lambda m: (out.append(m), hook(m)))
    done = time.time()
    assert stop, "a Stop button was shown with the fit"
    _, comm_id, state = stop[0]
    assert state["_model_name"] == "ButtonModel" and state["button_style"] == "danger"
    assert clicked, "the fit ran long enough to click"
    assert done - clicked[0] < 5, "stopped soon after the click"
    assert reply["content"]["status"] == "ok", reply["content"]
    err = "".join(m["content"].get("text", "") for m in out
                  if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    assert "training interrupted at epoch" in err and "weights are kept" in err
    views = [m for m in out if m["msg_type"] == "display_data" and WIDGET_VIEW in m["content"]["data"]]
    assert views and views[0]["content"]["data"][WIDGET_VIEW]["model_id"] == comm_id
    # after the fit: the button is disabled and says so
    updates = [m["content"]["data"]["state"] for m in out
               if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id]
    assert {"disabled": True} in updates and {"description": "Stopped"} in updates
    # the learner is still there, with its weights, and trained fewer batches than asked
    losses = int(kernel.run("learn.recorder.losses.len()").result())
    assert 0 < losses < 50 * 960
    assert kernel.run("learn.validate()?.0").status == "ok"


def class_folders(root, classes=("red", "green", "blue"), per_class=8):
    """`root/<class>/<class>_<k>.png`: small images, coloured by class with noise."""
    import random

    from PIL import Image as PILImage
    rng = random.Random(0)
    colours = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for k in range(per_class):
            img = PILImage.new("RGB", (32, 32))
            base = colours[c]
            img.putdata([tuple(max(0, min(255, v + rng.randint(-60, 60))) for v in base)
                         for _ in range(32 * 32)])
            img.save(os.path.join(root, c, f"{c}_{k}.png"))


def test_the_cleaner_widget_writes_what_was_clicked(kernel, tmp_path):
    class_folders(str(tmp_path))
    cell = kernel.run(f'''
let data = ImageDataBunch::from_folder({str(tmp_path)!r}, DataOptions::default().size(32).bs(8).device(Device::Cpu))?.normalize(imagenet_stats());
tch::manual_seed(0);
let mut learn = cnn_learner_with(data, models::mobilenet_v2, &[error_rate], LearnerOptions {{ pretrained: false, ..Default::default() }})?;
let cleaner = ImageCleaner::from_toplosses(&mut learn)?;
let w = cleaner.widget(4)?;
'''.replace("'", '"'))
    assert cell.status == "ok", cell.reply["content"]
    opens = [m for m in cell.messages if m["msg_type"] == "comm_open"]
    by_model = lambda name: [m["content"] for m in opens if m["content"]["data"]["state"]["_model_name"] == name]
    toggles, drops, images = by_model("ToggleButtonModel"), by_model("DropdownModel"), by_model("ImageModel")
    captions = [c for c in by_model("LabelModel") if c["data"]["state"]["value"].startswith("#")]
    assert len(toggles) == len(drops) == len(images) == len(captions) == 4
    assert [c["data"]["state"]["value"].split()[0] for c in captions] == ["#0", "#1", "#2", "#3"]
    assert all(t["data"]["state"]["description"] == "Delete" and t["data"]["state"]["value"] is False for t in toggles)
    assert drops[0]["data"]["state"]["_options_labels"] == ["blue", "green", "red"]
    assert all(i["data"]["buffer_paths"] == [["value"]] for i in images)
    buttons = {c["data"]["state"]["description"]: c["comm_id"] for c in by_model("ButtonModel")}
    assert {"Next batch", "Save"} <= set(buttons)
    grid = by_model("GridBoxModel")[0]["data"]["state"]
    assert len(grid["children"]) == 4
    views = [m for m in cell.messages if m["msg_type"] == "display_data" and WIDGET_VIEW in m["content"]["data"]]
    assert len(views) == 1, "one widget shown: the whole cleaner"

    files = kernel.run('(0..2).map(|i| w.cleaner().file(i).unwrap().display().to_string()).collect::<Vec<_>>()').result()
    first, second = [f.strip(' "') for f in files.strip("[]").split(",")]
    old_label = drops[1]["data"]["state"]["_options_labels"][drops[1]["data"]["state"]["index"]]
    new_index = (drops[1]["data"]["state"]["index"] + 1) % 3
    new_label = drops[1]["data"]["state"]["_options_labels"][new_index]

    drain_iopub(kernel)
    send_comm(kernel, toggles[0]["comm_id"], {"method": "update", "state": {"value": True}, "buffer_paths": []})
    send_comm(kernel, drops[1]["comm_id"], {"method": "update", "state": {"index": new_index}, "buffer_paths": []})
    send_comm(kernel, buttons["Save"], {"method": "custom", "content": {"event": "click"}})
    seen = iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg"
                       and "saved" in str(m["content"]["data"].get("state", {}).get("value", "")))
    status = seen[-1]["content"]["data"]["state"]["value"]
    assert "cleaned.csv" in status and "1 deleted, 1 relabelled" in status, status

    with open(tmp_path / "cleaned.csv") as f:
        rows = dict(line.strip().split(",") for line in f.readlines()[1:])
    rel = lambda p: os.path.relpath(p, str(tmp_path))
    assert rel(first) not in rows, "the deleted image is left out"
    assert rows[rel(second)] == new_label != old_label
    assert len(rows) == 3 * 8 - 1
    assert os.path.exists(first), "nothing is deleted from disk"

    # Next batch: the tiles show #4.. and the deleted one is not carried over
    drain_iopub(kernel)
    send_comm(kernel, buttons["Next batch"], {"method": "custom", "content": {"event": "click"}})
    seen = iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg"
                       and m["content"]["comm_id"] == captions[0]["comm_id"]
                       and "value" in m["content"]["data"].get("state", {}))
    assert seen[-1]["content"]["data"]["state"]["value"].startswith("#4 ")
    assert kernel.run("w.cleaner().deleted_files().len()").result() == "1"


def test_the_lr_find_picker_defaults_to_the_suggestion_and_follows_the_slider(kernel):
    assert kernel.run(TRAIN).status == "ok"
    cell = kernel.run("let found = learn.lr_find()?;\nfound.plot()?;")
    assert cell.status == "ok", cell.reply["content"]
    comm_id, state, _ = opened(cell, "FloatLogSliderModel")
    img, _, img_msg = opened(cell, "ImageModel")
    box, box_state, _ = opened(cell, "VBoxModel")
    assert box_state["children"] == [f"IPY_MODEL_{img}", f"IPY_MODEL_{comm_id}"], "the slider under the plot"
    assert bytes(img_msg["buffers"][0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert state["base"] == 10.0 and state["min"] <= -6 and state["max"] >= 0
    valley = float(kernel.run("found.suggestion()").result())
    assert state["value"] == pytest.approx(valley)
    assert float(kernel.run("found.selected()").result()) == pytest.approx(valley)
    drain_iopub(kernel)
    send_comm(kernel, comm_id, {"method": "update", "state": {"value": 0.0031}, "buffer_paths": []})
    iopub_until(kernel, lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id)
    assert kernel.run("found.selected()").result() == "0.0031"
