//! The smallest end-to-end proof that libtorch works from this crate: a two-layer network learns a
//! task it cannot solve linearly (points inside vs outside a circle) on the CPU.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[test]
fn a_tiny_network_learns_a_circle() {
    tch::manual_seed(0);
    let n = 2048;
    let x = Tensor::rand([n, 2], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    // label 1 inside the circle of radius 0.7 (about 38% of the square), 0 outside
    let y = x
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .lt(0.49)
        .to_kind(Kind::Int64);

    let vs = nn::VarStore::new(Device::Cpu);
    let net = nn::seq()
        .add(nn::linear(vs.root() / "l1", 2, 32, Default::default()))
        .add_fn(|t| t.relu())
        .add(nn::linear(vs.root() / "l2", 32, 2, Default::default()));
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();

    let initial = net
        .forward(&x)
        .cross_entropy_for_logits(&y)
        .double_value(&[]);
    for _ in 0..300 {
        let loss = net.forward(&x).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    let logits = net.forward(&x);
    let loss = logits.cross_entropy_for_logits(&y).double_value(&[]);
    let acc = logits
        .argmax(1, false)
        .eq_tensor(&y)
        .to_kind(Kind::Float)
        .mean(Kind::Float);
    let acc = acc.double_value(&[]);
    assert!(
        loss < initial / 3.0,
        "loss went from {initial:.3} to {loss:.3}"
    );
    // A linear model tops out at the majority class (~62%); the MLP must do far better.
    assert!(acc > 0.95, "accuracy {acc:.3}");
}
