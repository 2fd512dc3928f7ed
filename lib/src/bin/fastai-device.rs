//! Prints the device fastai will train on, after one real training step on it.
//!
//! `fastai-device` is what install.sh's summary shows; on a GPU box it is the quick check that
//! CUDA is really on (see `fastai::device`).

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Kind, Tensor};

fn main() {
    let info = fastai::device_info();
    let dev = info.device;
    // One optimizer step of a small conv net on random data, timed.
    let vs = nn::VarStore::new(dev);
    let net = nn::seq()
        .add(nn::conv2d(vs.root() / "c1", 3, 16, 3, Default::default()))
        .add_fn(|x| x.relu().adaptive_avg_pool2d([1, 1]).flatten(1, -1))
        .add(nn::linear(vs.root() / "fc", 16, 10, Default::default()));
    let mut opt = match nn::Adam::default().build(&vs, 1e-3) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{info}; optimizer failed: {e}");
            std::process::exit(1);
        }
    };
    let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, dev));
    let y = Tensor::randint(10, [8], (Kind::Int64, dev));
    let t0 = std::time::Instant::now();
    let loss = net.forward(&x).cross_entropy_for_logits(&y);
    opt.backward_step(&loss);
    let loss = loss.double_value(&[]);
    println!(
        "{info}; training step ok (loss {loss:.3}, {:.0} ms)",
        t0.elapsed().as_secs_f64() * 1e3
    );
}
