use super::axes::{linear_ticks, log_ticks};
use super::*;
use image::RgbImage;
use tch::{Device, Kind, Tensor};

const BLUE: [u8; 3] = [31, 119, 180];
const WHITE: [u8; 3] = [255, 255, 255];

fn draw(p: &Plot) -> RgbImage {
    let png = p.png().unwrap();
    // FASTAI_PLOT_TESTS_DIR=/some/dir keeps the PNGs, to look at them
    if let Some(dir) = std::env::var_os("FASTAI_PLOT_TESTS_DIR") {
        let name = format!("{:?}.png", p.title.as_deref().unwrap_or("untitled"));
        std::fs::write(
            std::path::Path::new(&dir).join(name.replace(['"', ' ', '/'], "_")),
            &png,
        )
        .unwrap();
    }
    image::load_from_memory(&png).unwrap().to_rgb8()
}

/// The axes box found from its black frame: (left, top, right, bottom) spine pixels.
fn frame(img: &RgbImage) -> (u32, u32, u32, u32) {
    let black = |x, y| img.get_pixel(x, y).0 == [0, 0, 0];
    let long_col = |x| (0..img.height()).filter(|&y| black(x, y)).count() > 200;
    let long_row = |y| (0..img.width()).filter(|&x| black(x, y)).count() > 300;
    let cols: Vec<u32> = (0..img.width()).filter(|&x| long_col(x)).collect();
    let rows: Vec<u32> = (0..img.height()).filter(|&y| long_row(y)).collect();
    (
        cols[0],
        rows[0],
        *cols.last().unwrap(),
        *rows.last().unwrap(),
    )
}

/// The pixel where data point (x, y) lands, on axes spanning `xlim` x `ylim`.
fn pixel_of(img: &RgbImage, (x, y): (f64, f64), xlim: (f64, f64), ylim: (f64, f64)) -> (u32, u32) {
    let (l, t, r, b) = frame(img);
    let fx = (x - xlim.0) / (xlim.1 - xlim.0);
    let fy = (y - ylim.0) / (ylim.1 - ylim.0);
    let px = l as f64 + fx * (r + 1 - l) as f64;
    let py = (b + 1) as f64 - fy * (b + 1 - t) as f64;
    (px as u32, py as u32)
}

fn err(p: Plot) -> String {
    p.png().unwrap_err().to_string()
}

#[test]
fn a_chart_is_a_png_of_matplotlibs_default_size_or_the_figsize() {
    let img = draw(&plot([1.0, 3.0, 2.0]));
    assert_eq!(img.dimensions(), (640, 480));
    let img = draw(&plot([1.0, 3.0, 2.0]).figsize((4.0, 3.0)));
    assert_eq!(img.dimensions(), (400, 300));
}

#[test]
fn a_point_lands_where_its_coordinates_say() {
    let p = scatter([2.0, 7.5], [8.0, 2.5])
        .xlim(0.0, 10.0)
        .ylim(0.0, 10.0)
        .title("scatter");
    let img = draw(&p);
    for pt in [(2.0, 8.0), (7.5, 2.5)] {
        let (x, y) = pixel_of(&img, pt, (0.0, 10.0), (0.0, 10.0));
        assert_eq!(img.get_pixel(x, y).0, BLUE, "{pt:?} at pixel ({x}, {y})");
    }
    // and nothing where there is no point
    let (x, y) = pixel_of(&img, (5.0, 5.0), (0.0, 10.0), (0.0, 10.0));
    assert_eq!(img.get_pixel(x, y).0, WHITE);
}

#[test]
fn a_line_over_the_index_runs_through_its_values() {
    // plot(y) draws y[i] at x = i, as plt.plot(losses)
    let p = plot(vec![0.0f32, 2.0, 4.0])
        .xlim(0.0, 4.0)
        .ylim(0.0, 4.0)
        .title("over index");
    let img = draw(&p);
    let (x, y) = pixel_of(&img, (1.5, 3.0), (0.0, 4.0), (0.0, 4.0));
    assert_eq!(img.get_pixel(x, y).0, BLUE);
    let (x, y) = pixel_of(&img, (3.0, 1.5), (0.0, 4.0), (0.0, 4.0));
    assert_eq!(img.get_pixel(x, y).0, WHITE, "y = 2x only");
}

#[test]
fn a_log_axis_puts_each_decade_the_same_distance_apart() {
    let p = plot_xy([1e-5, 1e-3, 1e-1], [1.0, 1.0, 1.0])
        .log_x()
        .xlim(1e-5, 1e-1)
        .ylim(0.0, 2.0);
    let img = draw(&p);
    // the line spans the axes at y = 1; 1e-3 is half way along in log units
    let (x, y) = pixel_of(&img, (-3.0, 1.0), (-5.0, -1.0), (0.0, 2.0));
    assert_eq!(img.get_pixel(x, y).0, BLUE);
    let e = err(plot_xy([-1.0, 0.0], [1.0, 2.0]).log_x());
    assert!(e.contains("no point has x > 0"), "{e}");
    let e = err(plot_xy([1.0, 2.0], [1.0, 2.0]).log_x().xlim(0.0, 3.0));
    assert!(e.contains("xlim(0, 3) starts at or below 0"), "{e}");
}

#[test]
fn nan_breaks_a_line_without_failing() {
    let y = [0.0, 1.0, f64::NAN, 3.0, 4.0];
    let p = plot(y).xlim(0.0, 4.0).ylim(0.0, 4.0).title("with a NaN");
    let img = draw(&p);
    let on = |x: f64| {
        let (px, py) = pixel_of(&img, (x, x), (0.0, 4.0), (0.0, 4.0));
        img.get_pixel(px, py).0
    };
    assert_eq!(on(0.5), BLUE);
    assert_eq!(on(2.0), WHITE, "no line through the NaN");
    assert_eq!(on(3.5), BLUE);
}

#[test]
fn tensors_vecs_and_slices_plot_alike() {
    let xs = Tensor::from_slice(&[0.0f32, 1.0, 2.0]);
    let ys = Tensor::from_slice(&[1.0f64, 0.0, 1.0]).to_kind(Kind::Half);
    let a = draw(&scatter(&xs, &ys));
    let b = draw(&scatter(vec![0.0f32, 1.0, 2.0], &[1.0, 0.0, 1.0][..]));
    assert_eq!(a, b);
}

#[test]
fn bad_input_says_what_is_wrong() {
    let e = err(scatter([1.0, 2.0, 3.0], [1.0, 2.0]));
    assert!(
        e.contains("scatter(x, y): x has 3 values but y has 2"),
        "{e}"
    );
    let e = err(plot(Vec::<f64>::new()));
    assert!(e.contains("line_y(y): the series is empty"), "{e}");
    let e = err(plot([f64::NAN, f64::INFINITY]));
    assert!(e.contains("all 2 values of y are NaN or infinite"), "{e}");
    let e = err(plot_xy([f64::NAN, 1.0], [1.0, f64::NAN]));
    assert!(e.contains("no point has both x and y finite"), "{e}");
    let m = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
    let e = err(plot_xy(&m, [1.0, 2.0, 3.0, 4.0]));
    assert!(
        e.contains("line(x, y): x is a 2-d tensor of shape [4, 2]"),
        "{e}"
    );
    let e = err(Plot::new().title("empty"));
    assert!(e.contains("it has no data"), "{e}");
    let e = err(Plot::new().label("loss"));
    assert!(e.contains("add a series first"), "{e}");
    let e = err(plot([1.0, 2.0]).color("blurple"));
    assert!(e.contains("unknown color \"blurple\""), "{e}");
    let e = err(plot([1.0, 2.0]).ylim(2.0, 1.0));
    assert!(e.contains("ylim(2, 1)"), "{e}");
    let e = err(plot([1.0, 2.0]).figsize((0.1, 0.1)));
    assert!(e.contains("no room for the axes"), "{e}");
    // the first problem is the one reported, and Debug says it without drawing
    let p = scatter([1.0], [1.0, 2.0]).color("nope");
    assert!(
        format!("{p:?}").contains("cannot be drawn: scatter(x, y): x has 1 values"),
        "{p:?}"
    );
}

#[test]
fn a_legend_appears_only_for_labelled_series() {
    // the legend's frame: a long light grey line
    let legend_grey = |img: &RgbImage| {
        img.rows().any(|row| {
            let grey: Vec<bool> = row.map(|p| p.0 == [204, 204, 204]).collect();
            grey.windows(40).any(|w| w.iter().all(|&g| g))
        })
    };
    let x = [0.0, 1.0, 2.0];
    assert!(!legend_grey(&draw(&plot_xy(x, x))));
    let p = Plot::new()
        .scatter(x, x)
        .label("data")
        .line(x, [0.0, 1.5, 2.5])
        .label("fit");
    let img = draw(&p.title("legend"));
    assert!(legend_grey(&img));
    // the second series has the second tab10 colour
    assert!(img.pixels().any(|p| p.0 == [255, 127, 14]));
}

#[test]
fn colours_parse_as_matplotlib_names() {
    assert_eq!(parse_color("C1"), Some(TAB10[1]));
    assert_eq!(parse_color("tab:green"), Some(TAB10[2]));
    assert_eq!(parse_color("orange"), Some(TAB10[1]));
    assert_eq!(parse_color("#FF0000"), Some(RGBColor(255, 0, 0)));
    assert_eq!(parse_color("k"), Some(RGBColor(0, 0, 0)));
    assert_eq!(parse_color("C10"), None);
    assert_eq!(parse_color("#ff00"), None);
}

#[test]
fn ticks_are_round_and_share_their_decimals() {
    let labels = |t: Vec<(f64, String)>| t.into_iter().map(|t| t.1).collect::<Vec<_>>();
    assert_eq!(
        labels(linear_ticks(-0.1, 2.1, 8)),
        ["0.00", "0.25", "0.50", "0.75", "1.00", "1.25", "1.50", "1.75", "2.00"]
    );
    assert_eq!(
        labels(linear_ticks(-1.1, 1.1, 6)),
        ["-1.0", "-0.5", "0.0", "0.5", "1.0"]
    );
    assert_eq!(
        labels(linear_ticks(0.0, 5000.0, 5)),
        ["0", "1000", "2000", "3000", "4000", "5000"]
    );
    assert_eq!(
        labels(linear_ticks(0.0, 3e6, 3)),
        ["0", "1e6", "2e6", "3e6"]
    );
    assert_eq!(
        labels(linear_ticks(1e-4, 4e-4, 3)),
        ["1e-4", "2e-4", "3e-4", "4e-4"]
    );
    assert_eq!(
        labels(log_ticks(-7.2, 0.3, 8)),
        ["1e-7", "1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1e0"]
    );
    assert_eq!(
        labels(log_ticks(-7.2, 0.3, 4)),
        ["1e-7", "1e-5", "1e-3", "1e-1"]
    );
    assert_eq!(labels(log_ticks(-2.9, -1.9, 8)), ["2e-3", "5e-3", "1e-2"]);
}
