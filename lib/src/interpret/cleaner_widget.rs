//! The image cleaner as a notebook widget, as fastai v2's `ImageClassifierCleaner`: a grid of
//! the images to review (largest loss first, or near-duplicate pairs), each with a drop-down of
//! the classes (relabel) and a Delete toggle, and under it "Next batch" and "Save" buttons. Save
//! writes `cleaned.csv` exactly as [`ImageCleaner::save`] does; nothing on disk is deleted.
//!
//! ```no_run
//! # use fastai::vision::*;
//! # fn main() -> fastai::Result<()> {
//! # let mut learn: Learner = todo!();
//! let cleaner = ImageCleaner::from_toplosses(&mut learn)?;
//! let w = cleaner.widget(8)?;     // the grid; click, then Save
//! // later cells: w.cleaner() is the cleaner as the clicks left it; w.save()? from code
//! # Ok(()) }
//! ```
//!
//! Without the fastai kernel (no widgets) it shows the first grid as a picture, as
//! [`ImageCleaner::show`] does, and the code-driven methods do the cleaning.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::ImageCleaner;
use crate::display::value::CellValue;
use crate::error::Result;
use crate::widgets::{
    set_layout, Button, Dropdown, GridBox, HBox, Image, Label, ToggleButton, VBox, Widget,
};

/// Thumbnails in the grid are at most this many pixels on a side.
const THUMB: u32 = 160;

struct State {
    cleaner: ImageCleaner,
    page: usize,
    per_page: usize,
}

/// One cell of the grid.
#[derive(Clone)]
struct Tile {
    image: Image,
    caption: Label,
    class: Dropdown,
    delete: ToggleButton,
    frame: VBox,
}

/// The cleaner widget (see the [module documentation](self)). A handle: keep it in a variable to
/// read the cleaning back ([`CleanerWidget::cleaner`]) or save from code.
#[derive(Clone)]
pub struct CleanerWidget {
    state: Arc<Mutex<State>>,
    tiles: Vec<Tile>,
    status: Label,
    next: Button,
    save: Button,
    root: Option<VBox>,
}

impl std::fmt::Debug for CleanerWidget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CleanerWidget({})", self.state.lock().unwrap().cleaner)
    }
}

impl ImageCleaner {
    /// Shows the cleaner as a widget, `per_page` images at a time (see
    /// [`CleanerWidget`]). The widget works on a copy of this cleaner: read the result with
    /// [`CleanerWidget::cleaner`].
    pub fn widget(&self, per_page: usize) -> Result<CleanerWidget> {
        if self.is_empty() {
            return Err(crate::Error::Msg(
                "the cleaner has no images: the validation set is empty".into(),
            ));
        }
        let per_page = per_page.clamp(1, 64);
        let state = Arc::new(Mutex::new(State {
            cleaner: self.clone(),
            page: 0,
            per_page,
        }));
        let live = crate::widgets::live();
        let classes: Vec<&str> = self.classes().iter().map(String::as_str).collect();
        let mut tiles = Vec::new();
        if live {
            for _ in 0..per_page.min(self.len()) {
                let image = Image::new(Vec::new(), "jpeg").width(&THUMB.to_string());
                let caption = Label::new("");
                set_layout(&caption, &[("width", &format!("{THUMB}px"))]);
                let class = Dropdown::new(&classes, None)?;
                set_layout(&class, &[("width", &format!("{THUMB}px"))]);
                let delete = ToggleButton::new(false, "Delete").icon("trash");
                set_layout(&delete, &[("width", &format!("{THUMB}px"))]);
                let frame = VBox::new(&[&image, &caption, &class, &delete]);
                tiles.push(Tile {
                    image,
                    caption,
                    class,
                    delete,
                    frame,
                });
            }
        }
        let w = CleanerWidget {
            state,
            tiles,
            status: Label::new(""),
            next: Button::new("Next batch").icon("forward"),
            save: Button::new("Save").style("success").icon("save"),
            root: None,
        };
        if !live {
            // no widgets here: the first grid as a picture, cleaning by code
            let mut c = self.clone();
            c.show_from(0, per_page)?;
            println!(
                "(no widgets outside the fastai kernel: clean with cleaner.delete(i), \
                 cleaner.relabel(i, class) and cleaner.save())"
            );
            return Ok(w);
        }
        w.connect();
        w.refresh();
        let frames: Vec<&dyn Widget> = w.tiles.iter().map(|t| &t.frame as &dyn Widget).collect();
        let cols = per_page.min(4);
        let grid = GridBox::new(&frames).columns(&format!("repeat({cols}, {}px)", THUMB + 12));
        let buttons = HBox::new(&[&w.next, &w.save, &w.status]);
        let root = VBox::new(&[&grid, &buttons]);
        root.display();
        Ok(CleanerWidget {
            root: Some(root),
            ..w
        })
    }
}

impl CleanerWidget {
    /// The callbacks: every tile's drop-down and toggle, Next batch, Save.
    fn connect(&self) {
        for (k, tile) in self.tiles.iter().enumerate() {
            let state = self.state.clone();
            tile.class.on_change(move |label| {
                let mut s = state.lock().unwrap();
                let i = s.page * s.per_page + k;
                if i >= s.cleaner.len() {
                    return;
                }
                if let Some(c) = s.cleaner.classes().iter().position(|x| *x == label) {
                    let deleted = s.cleaner.is_deleted(i).unwrap_or(false);
                    s.cleaner.set_state(i, deleted, c);
                }
            });
            let state = self.state.clone();
            let toggle = tile.delete.clone();
            tile.delete.on_change(move |on| {
                // red while the image is to be left out
                toggle.set_style(if on { "danger" } else { "" });
                let mut s = state.lock().unwrap();
                let i = s.page * s.per_page + k;
                if i < s.cleaner.len() {
                    let class = s.cleaner.label_index(i);
                    s.cleaner.set_state(i, on, class);
                }
            });
        }
        let me = self.clone();
        self.next.on_click(move || me.next_batch());
        let me = self.clone();
        self.save.on_click(move || {
            // quietly: a callback's prints would land in whichever cell runs next
            let saved = me.state.lock().unwrap().cleaner.write_csv("cleaned.csv");
            let msg = match saved {
                Ok((path, n)) => {
                    let c = me.cleaner();
                    format!(
                        "saved {} ({n} images; {} deleted, {} relabelled)",
                        path.display(),
                        c.deleted_files().len(),
                        c.relabelled().len()
                    )
                }
                Err(e) => format!("not saved: {e}"),
            };
            me.status.set_value(&msg);
        });
    }

    /// Shows the page's images in the tiles (those past the end are hidden).
    fn refresh(&self) {
        struct Shown {
            jpeg: Vec<u8>,
            caption: String,
            class: String,
            deleted: bool,
        }
        // read under the lock, set the widgets after it: setting a value runs the tiles'
        // callbacks, which take the lock
        let shown: Vec<Option<Shown>> = {
            let s = self.state.lock().unwrap();
            (0..self.tiles.len())
                .map(|k| {
                    let i = s.page * s.per_page + k;
                    (i < s.cleaner.len()).then(|| Shown {
                        jpeg: jpeg(&s.cleaner, i),
                        caption: s.cleaner.caption(i),
                        class: s.cleaner.label(i).unwrap_or_default().to_string(),
                        deleted: s.cleaner.is_deleted(i).unwrap_or(false),
                    })
                })
                .collect()
        };
        for (tile, shown) in self.tiles.iter().zip(shown) {
            match shown {
                Some(v) => {
                    tile.image.set_bytes(v.jpeg);
                    tile.caption.set_value(&v.caption);
                    let _ = tile.class.set_value(&v.class);
                    tile.delete.set_value(v.deleted);
                    set_layout(&tile.frame, &[("visibility", "visible")]);
                }
                None => set_layout(&tile.frame, &[("visibility", "hidden")]),
            }
        }
    }

    /// Shows the next `per_page` images (after the last, the first again).
    pub fn next_batch(&self) {
        let note = {
            let mut s = self.state.lock().unwrap();
            let n = s.cleaner.len();
            s.page += 1;
            if s.page * s.per_page >= n {
                s.page = 0;
                format!("all {n} images reviewed; from #0 again")
            } else {
                let start = s.page * s.per_page;
                format!(
                    "images #{start} to #{} of {n}",
                    (start + s.per_page).min(n) - 1
                )
            }
        };
        self.refresh();
        self.status.set_value(&note);
    }

    /// Writes `cleaned.csv` as the clicks left it ([`ImageCleaner::save`]), as the Save button
    /// does.
    pub fn save(&self) -> Result<PathBuf> {
        self.state.lock().unwrap().cleaner.save()
    }

    /// The whole widget (grid and buttons), to show it again; `None` without widgets.
    pub fn view(&self) -> Option<&VBox> {
        self.root.as_ref()
    }

    /// The cleaner as the clicks left it (a copy): its deleted files, relabelled images, ...
    pub fn cleaner(&self) -> ImageCleaner {
        self.state.lock().unwrap().cleaner.clone()
    }
}

/// Shown when created; a cell that ends in one shows nothing more.
impl CellValue for CleanerWidget {
    fn evcxr_display(&self) {}
}

/// Image `i` of the review as a JPEG thumbnail.
fn jpeg(c: &ImageCleaner, i: usize) -> Vec<u8> {
    let img = c.thumbnail(i);
    let (w, h) = img.dimensions();
    let scale = THUMB as f64 / w.max(h) as f64;
    let img = if scale < 1.0 {
        image::imageops::resize(
            &img,
            ((w as f64 * scale) as u32).max(1),
            ((h as f64 * scale) as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let mut out = Vec::new();
    let _ = image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg);
    out
}
