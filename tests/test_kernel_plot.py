"""Plotting a user's own data in the real kernel: a cell ending in a chart shows its PNG, a bad
series fails the cell with the library's message, and animate() shows its frames live in one
display that ends as a looping GIF."""


def test_a_cell_ending_in_a_plot_shows_its_png(kernel):
    cell = kernel.run('plot(&vec![2.3f32, 1.1, 0.7, 0.5]).title("loss")')
    assert cell.status == "ok", cell.reply["content"]
    result = cell.of_type("execute_result")
    assert result and result[0]["data"]["image/png"].startswith("iVBORw0KGgo"), cell.messages
    assert "Plot: loss (line of 4 points)" in result[0]["data"]["text/plain"]


def test_a_bad_series_fails_the_cell_with_what_is_wrong(kernel):
    cell = kernel.run("scatter([1.0, 2.0, 3.0], [1.0, 2.0])")
    assert cell.status == "error", cell.messages
    said = cell.reply["content"].get("evalue", "") + cell.stderr
    assert "x has 3 values but y has 2" in said, (cell.reply["content"], cell.stderr)


def test_animate_updates_one_display_and_ends_as_a_gif(kernel):
    code = r'''
let x = [0.0, 1.0, 2.0];
animate(5, 20.0, |i| Plot::new().scatter(x, x).line(x, [0.0, 0.2 * i as f64, 0.4 * i as f64]))?;
'''
    cell = kernel.run(code)
    assert cell.status == "ok", (cell.reply["content"], cell.stderr)
    shown = cell.of_type("display_data")
    assert len(shown) == 1, shown
    display_id = shown[0]["transient"]["display_id"]
    assert shown[0]["data"]["image/png"].startswith("iVBORw0KGgo")
    updates = cell.of_type("update_display_data")
    assert all(u["transient"]["display_id"] == display_id for u in updates)
    # frames 2..5 as PNGs, then the whole animation as a GIF in HTML
    assert [("image/png" in u["data"]) for u in updates] == [True] * 4 + [False]
    assert updates[-1]["data"]["text/html"].startswith('<img src="data:image/gif;base64,R0lGOD')
