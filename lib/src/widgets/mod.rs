//! Jupyter widgets from Rust: buttons, sliders, drop-downs, images, boxes - the models of
//! ipywidgets 8, drawn by JupyterLab's own widget renderer (`jupyterlab_widgets`), driven from
//! the kernel through Jupyter comms.
//!
//! ```no_run
//! use fastai::widgets::*;
//! let lr = FloatLogSlider::new(1e-3, -6.0, 0.0, 0.1).description("lr");
//! let go = Button::new("Train");
//! let status = Label::new("waiting");
//! let s = status.clone();
//! go.on_click(move || s.set_value("clicked"));
//! VBox::new(&[&lr, &go, &status]).display();
//! // any later cell: lr.value() is what the slider shows now
//! ```
//!
//! Values set in the browser are applied at once, so a later cell reads them; callbacks run on
//! the kernel's side when the user acts - while no cell runs, and while a cell trains (between
//! batches). A widget is a handle: clone it into a closure, keep it in a variable. What a
//! callback prints while no cell runs is not shown in the notebook (it goes to the kernel's log,
//! or to the next cell): have it set a [`Label`] or [`HTML`] instead.
//!
//! Under the fastai kernel, widgets speak the widget protocol (version 2.1) over comms, through
//! the kernel's back channel (see the `fastai-wire` crate). Elsewhere - the stock evcxr kernel, a
//! plain program - the same calls work but show static HTML or text, and callbacks never run.

mod controls;
pub(crate) mod hub;
mod input;

pub use controls::{
    set_layout, Button, Checkbox, Dropdown, FloatLogSlider, GridBox, HBox, Image, IntSlider, Label,
    Text, ToggleButton, VBox, Widget, HTML,
};
pub use hub::{run_pending, EventsDuringFit};
pub use input::{input, input_password};

/// Whether widgets are live here (the fastai kernel, its back channel connected): callbacks
/// can run. Connects on first use.
pub fn live() -> bool {
    hub::hub().live()
}
