//! Shared by the heat-map checks (`heatmap_check`, `heatmap_pasted`): how a Grad-CAM map sits on
//! an item.

use fastai::vision::Tensor;

/// How a Grad-CAM map (`cam`, H x W) sits on an item (`on`, the item's pixels, row by row): the
/// share of the map's mass on the item (0 for an empty map), the item's share of the picture,
/// and whether the hottest pixel is on the item.
pub fn score(cam: &Tensor, on: &[bool]) -> (f64, f64, bool) {
    let cam: Vec<f32> = Vec::<f32>::try_from(cam.flatten(0, -1)).unwrap();
    assert_eq!(cam.len(), on.len(), "the map and the item's pixels");
    let total: f64 = cam.iter().map(|&v| v as f64).sum();
    let inside: f64 = cam
        .iter()
        .zip(on)
        .filter(|(_, &o)| o)
        .map(|(&v, _)| v as f64)
        .sum();
    let area = on.iter().filter(|&&o| o).count() as f64 / on.len() as f64;
    let hottest = cam
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap();
    let mass = if total > 0.0 { inside / total } else { 0.0 };
    (mass, area, on[hottest])
}
