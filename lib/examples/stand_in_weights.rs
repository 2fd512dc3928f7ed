//! Writes randomly initialised ResNet weights laid out as the model hub serves them
//! (`<dir>/<arch>.tv_in1k/resolve/main/model.safetensors`: torchvision names, the body plus a
//! 1000-class `fc`), so that tests and offline demos can point `FASTAI_WEIGHTS_BASE` at a local
//! HTTP server serving `<dir>`. The values are random: a stand-in for the layout, not for accuracy.
//!
//!     cargo run --release --example stand_in_weights -- DIR resnet34 [resnet50 ...]

use fastai::vision::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!(
            "usage: stand_in_weights DIR ARCH [ARCH ...]   (ARCH: resnet18, resnet34, resnet50)"
        );
        std::process::exit(2);
    }
    let dir = std::path::Path::new(&args[0]);
    for name in &args[1..] {
        let arch = match Arch::from_name(name) {
            Some(a @ (Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50)) => a,
            _ => {
                eprintln!(
                    "{name}: not a ResNet (the hub download serves resnet18, resnet34, resnet50)"
                );
                std::process::exit(2);
            }
        };
        let dest = dir.join(format!("{name}.tv_in1k/resolve/main/model.safetensors"));
        std::fs::create_dir_all(dest.parent().unwrap()).expect("cannot create the output folder");
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _body = fastai::models::body(arch, &vs.root());
        let _fc = nn::linear(vs.root() / "fc", arch.features(), 1000, Default::default());
        let tmp = dest.with_extension("partial.safetensors");
        vs.save(&tmp).expect("cannot write the weights");
        std::fs::rename(&tmp, &dest).expect("cannot rename the weights into place");
        println!("{}", dest.display());
    }
}
