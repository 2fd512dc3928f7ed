"""`:dep` shows its build in the cell: cargo's `Compiling ...` lines arrive as stderr stream
output while the dependency builds, before the cell's reply (evcxr itself only writes them to the
server's log)."""

import textwrap


def _tiny_crate(root, name, build_seconds):
    """A local crate whose build script takes `build_seconds`: the build has a visible duration."""
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(textwrap.dedent(f"""\
        [package]
        name = "{name}"
        version = "0.1.0"
        edition = "2021"
        build = "build.rs"
        """))
    (root / "build.rs").write_text(
        f"fn main() {{ std::thread::sleep(std::time::Duration::from_secs({build_seconds})); }}\n"
    )
    (root / "src" / "lib.rs").write_text("pub fn answer() -> u32 { 42 }\n")


def test_dep_build_lines_reach_the_cell_while_it_builds(kernel, tmp_path):
    crate = tmp_path / "tinydep"
    _tiny_crate(crate, "tinydep", build_seconds=3)
    cell = kernel.run(f':dep tinydep = {{ path = "{crate}" }}\ntinydep::answer()')
    arrivals, t_reply = cell.arrivals, cell.seconds
    assert cell.status == "ok", cell.reply["content"]
    results = [c for _, k, c in arrivals if k == "execute_result"]
    assert results and results[0]["data"]["text/plain"] == "42"
    build = [
        (t, c["text"]) for t, k, c in arrivals
        if k == "stream" and c["name"] == "stderr" and "Compiling tinydep v0.1.0" in c["text"]
    ]
    assert build, [a[1:] for a in arrivals]
    # Streamed while building: the line came before the 3 s build script ran, not with the reply.
    t_line = build[0][0]
    print(f"'Compiling tinydep' at {t_line:.1f} s, reply at {t_reply:.1f} s")
    assert t_reply - t_line > 2.5, (t_line, t_reply)
    # The kernel's own log lines stay out of the cell.
    streamed = "".join(c["text"] for _, k, c in arrivals if k == "stream")
    assert "build folder" not in streamed and "[cell process]" not in streamed


def test_a_cell_without_new_dependencies_shows_no_build_lines(kernel):
    cell = kernel.run("let x = 2;\nx * 21")
    assert cell.status == "ok" and cell.result() == "42"
    assert "Compiling" not in cell.stderr
