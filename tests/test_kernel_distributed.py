"""Data-parallel training from a notebook cell: `notebook_launcher!` compiles the cell's training
function into a worker program and runs two ranks of it (Gloo over 127.0.0.1); rank 0's progress
table updates live in the cell, rank 1's lines come prefixed, and the stop button (an interrupt)
stops both ranks' fits together."""

import threading

from helpers import Kernel

CELL = r'''
fastai::notebook_launcher!(2, {
    /// the cell's settings reach the ranks through their environment (one worker program)
    fn number(name: &str) -> usize {
        std::env::var(name).unwrap().parse().unwrap()
    }

    fn train(ctx: &DistContext) -> fastai::Result<()> {
        tch::manual_seed(1); // the same data on both ranks
        let x = Tensor::randn([4096, 16], (Kind::Float, Device::Cpu));
        let y = x.sum_dim_intlist(1, false, Kind::Float).gt(0.0).to_kind(Kind::Int64);
        let data = DataBunch::from_tensors(
            (x.narrow(0, 0, 3072), y.narrow(0, 0, 3072)),
            (x.narrow(0, 3072, 1024), y.narrow(0, 3072, 1024)),
            number("NBL_BS"),
        )?;
        let model = Net::new(Device::Cpu, |p| {
            nn::seq()
                .add(nn::linear(p / "a", 16, 64, Default::default()))
                .add_fn(|t| t.relu())
                .add(nn::linear(p / "b", 64, 2, Default::default()))
        });
        let mut learn = Learner::new(data, model, cross_entropy_flat(), &[accuracy])?;
        learn.to_distributed(ctx)?;
        learn.fit_one_cycle(number("NBL_EPOCHS"), Some(1e-2.into()))?;
        println!("rank {} done: {:?}", ctx.rank, learn.recorder.metrics.last());
        Ok(())
    }
})?;
'''


def test_two_ranks_train_from_a_cell_with_rank_0s_live_table(kernel):
    assert kernel.run("unsafe { std::env::set_var(\"NBL_EPOCHS\", \"3\"); std::env::set_var(\"NBL_BS\", \"16\"); }").status == "ok"
    cell = kernel.run(CELL, timeout=900)
    assert cell.status == "ok", cell.reply["content"]
    tables = [c for c in cell.of_type("update_display_data") if "valid_loss" in c["data"].get("text/plain", "")]
    assert len(tables) >= 3, "one table update per epoch at least"
    assert "accuracy" in tables[-1]["data"]["text/plain"]
    assert "rank 0 done" in cell.stdout
    assert "[rank 1] rank 1 done" in cell.stderr
    # both ranks report the whole validation set's metrics: the same numbers
    mine = cell.stdout.split("rank 0 done: ")[1].splitlines()[0]
    theirs = cell.stderr.split("[rank 1] rank 1 done: ")[1].splitlines()[0]
    assert mine == theirs


def test_the_stop_button_stops_every_rank(kernel):
    # a long fit (small batches), interrupted once it is under way (the worker program is the
    # one the test above compiled)
    assert kernel.run("unsafe { std::env::set_var(\"NBL_EPOCHS\", \"200\"); std::env::set_var(\"NBL_BS\", \"4\"); }").status == "ok"
    timer = threading.Timer(25.0, kernel.manager.interrupt_kernel)
    timer.start()
    try:
        cell = kernel.run(CELL, timeout=600)
    finally:
        timer.cancel()
    text = cell.stdout + cell.stderr
    assert "rank 0 done" in cell.stdout and "[rank 1] rank 1 done" in cell.stderr, text[-3000:]
    assert cell.seconds < 120, cell.seconds
    # the kernel goes on
    assert kernel.run("1 + 1").result() == "2"
