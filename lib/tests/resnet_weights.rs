//! ResNet weights are downloaded on first use from `$FASTAI_WEIGHTS_BASE` (a model hub by
//! default; here a local HTTP server), cached under `$FASTAI_HOME/models`, and loaded into the
//! body; a file with the wrong shapes is an error naming the tensor. This test sets environment
//! variables, so it lives alone in its own process.

mod common;

use common::colors::make_color_data;
use common::http::{Mode, Server};
use common::tmp::TempDir;
use fastai::vision::*;

fn data(dir: &std::path::Path) -> ImageDataBunch {
    let files = make_color_data(dir, 4, 3);
    let opts = DataOptions::default().size(32).bs(4).device(Device::Cpu);
    ImageDataBunch::from_name_re(dir, &files, r"/([a-z]+)_\d+.png$", opts).unwrap()
}

/// torchvision-named weights of `arch`'s body plus a 1000-class `fc`, as a hub would serve them.
fn weights_file(arch: Arch, path: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    let vs = nn::VarStore::new(Device::Cpu);
    let _body = fastai::models::body(arch, &vs.root());
    let _fc = nn::linear(vs.root() / "fc", arch.features(), 1000, Default::default());
    vs.save(path).unwrap();
    vs.variables()
}

#[test]
fn resnet_weights_download_once_then_load_from_cache() {
    let tmp = TempDir::new("resnet-weights");
    let server = Server::start();
    std::env::set_var("FASTAI_HOME", tmp.join("home"));
    std::env::set_var("FASTAI_WEIGHTS_BASE", server.base());

    let served = tmp.join("r18.safetensors");
    let values = weights_file(Arch::Resnet18, &served);
    server.serve(
        "resnet18.tv_in1k/resolve/main/model.safetensors",
        std::fs::read(&served).unwrap(),
        Mode::Normal,
    );

    let learn = cnn_learner(data(&tmp.join("d1")), models::resnet18, &[error_rate]).unwrap();
    let cached = tmp.join("home/models/resnet18-imagenet.safetensors");
    assert!(cached.is_file(), "cached under FASTAI_HOME/models");
    let got = learn.model.var_store().variables();
    for name in [
        "conv1.weight",
        "layer3.1.conv2.weight",
        "layer4.0.downsample.1.running_var",
    ] {
        assert!(
            got[name].equal(&values[name]),
            "{name} loaded from the served file"
        );
    }
    let hits = server.requests().len();
    assert_eq!(hits, 1);

    // Second learner: from the cache, no request.
    let _again = cnn_learner(data(&tmp.join("d2")), models::resnet18, &[error_rate]).unwrap();
    assert_eq!(server.requests().len(), hits, "no second download");

    // resnet50's file served as resnet34's: shapes differ, and the error names a tensor.
    let wrong = tmp.join("r50.safetensors");
    weights_file(Arch::Resnet50, &wrong);
    server.serve(
        "resnet34.tv_in1k/resolve/main/model.safetensors",
        std::fs::read(&wrong).unwrap(),
        Mode::Normal,
    );
    let err = cnn_learner(data(&tmp.join("d3")), models::resnet34, &[error_rate])
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("has shape") && err.contains("resnet34-imagenet.safetensors"),
        "{err}"
    );

    // An unreachable hub: a clear error naming the URL.
    std::env::set_var("FASTAI_WEIGHTS_BASE", "http://127.0.0.1:9/");
    let err = cnn_learner(data(&tmp.join("d4")), models::resnet50, &[error_rate])
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("resnet50.tv_in1k"), "{err}");
}
