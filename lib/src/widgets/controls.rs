//! The controls: ipywidgets 8's models (`@jupyter-widgets/controls` 2.0.0, with their
//! `@jupyter-widgets/base` 2.0.0 layout and style models), their values readable from Rust, and
//! `on_click` / `on_change` callbacks.
//!
//! Every widget is a handle (a model id, cheap to clone and to keep in a variable across cells)
//! to state kept in the process's hub, so `slider.value()` in any later cell gives what the user
//! set in the browser.

use serde_json::{json, Map, Value};

use super::hub::{hub, Callback, On};
use crate::display::progress::html_escape;
use crate::display::Rich;

const CONTROLS: &str = "@jupyter-widgets/controls";
const BASE: &str = "@jupyter-widgets/base";
const VERSION: &str = "2.0.0";

/// What every widget is: a model the frontend draws, shown with [`Widget::display`].
pub trait Widget {
    /// The model's id (its comm id).
    fn model_id(&self) -> &str;
    /// A one-line description (`IntSlider(value=3, min=0, max=10)`): the text/plain form.
    fn describe(&self) -> String;
    /// What is shown where widgets cannot be (a plain program, the stock evcxr kernel).
    fn static_html(&self) -> String {
        format!("<code>{}</code>", html_escape(&self.describe()))
    }
    /// Shows the widget where the cell's output ends. Under the fastai kernel it is live
    /// (`application/vnd.jupyter.widget-view+json`); elsewhere its static form.
    fn display(&self) {
        show(self.model_id(), &self.describe(), &self.static_html());
    }
    /// Closes the widget: its views disappear, its callbacks no longer run.
    fn close(&self) {
        hub().close(self.model_id());
    }
}

fn show(id: &str, text: &str, html: &str) {
    let h = hub();
    if h.live() {
        h.ensure_open(id);
        let sent = h.send(&json!({
            fastai_wire::KEY_OP: fastai_wire::OP_DISPLAY,
            fastai_wire::KEY_DATA: {
                "application/vnd.jupyter.widget-view+json": {
                    "model_id": id, "version_major": 2, "version_minor": 0,
                },
                "text/plain": text,
            },
        }));
        if sent {
            return;
        }
    }
    crate::display::display(&Rich::html(html, text));
}

fn model_keys(model: &str, module: &str, view: &str, view_module: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("_model_name", model),
        ("_model_module", module),
        ("_model_module_version", VERSION),
        ("_view_name", view),
        ("_view_module", view_module),
        ("_view_module_version", VERSION),
    ] {
        m.insert(k.into(), v.into());
    }
    m
}

/// CSS properties of `LayoutModel` (all unset by default).
const LAYOUT_KEYS: &[&str] = &[
    "align_content",
    "align_items",
    "align_self",
    "border_bottom",
    "border_left",
    "border_right",
    "border_top",
    "bottom",
    "display",
    "flex",
    "flex_flow",
    "grid_area",
    "grid_auto_columns",
    "grid_auto_flow",
    "grid_auto_rows",
    "grid_column",
    "grid_gap",
    "grid_row",
    "grid_template_areas",
    "grid_template_columns",
    "grid_template_rows",
    "height",
    "justify_content",
    "justify_items",
    "left",
    "margin",
    "max_height",
    "max_width",
    "min_height",
    "min_width",
    "object_fit",
    "object_position",
    "order",
    "overflow",
    "padding",
    "right",
    "top",
    "visibility",
    "width",
];

fn open_layout(set: &[(&str, &str)]) -> String {
    let mut s = model_keys("LayoutModel", BASE, "LayoutView", BASE);
    for k in LAYOUT_KEYS {
        s.insert((*k).into(), Value::Null);
    }
    for (k, v) in set {
        s.insert((*k).into(), (*v).into());
    }
    hub().open(s, vec![])
}

/// A style model and its attributes' defaults.
fn open_style(model: &str) -> String {
    let mut s = model_keys(model, CONTROLS, "StyleView", BASE);
    let font = [
        "font_family",
        "font_size",
        "font_style",
        "font_variant",
        "font_weight",
        "text_color",
        "text_decoration",
    ];
    let keys: &[&str] = match model {
        "ButtonStyleModel" => &["button_color"],
        "SliderStyleModel" => &["handle_color"],
        "CheckboxStyleModel" | "TextStyleModel" | "HTMLStyleModel" | "LabelStyleModel" => {
            &["background"]
        }
        _ => &[],
    };
    for k in keys {
        s.insert((*k).into(), Value::Null);
    }
    if model != "ButtonStyleModel" {
        s.insert("description_width".into(), "".into());
    }
    match model {
        "ButtonStyleModel" | "ToggleButtonStyleModel" | "LabelStyleModel" => {
            for k in font {
                s.insert(k.into(), Value::Null);
            }
        }
        "TextStyleModel" | "HTMLStyleModel" => {
            s.insert("font_size".into(), Value::Null);
            s.insert("text_color".into(), Value::Null);
        }
        _ => {}
    }
    hub().open(s, vec![])
}

fn reference(id: &str) -> Value {
    format!("IPY_MODEL_{id}").into()
}

/// Opens a control: its layout, its style (if it has one), then itself with `state` over the
/// defaults every control has.
fn open_control(
    model: &str,
    view: &str,
    style: Option<&str>,
    state: Value,
    buffers: Vec<(String, Vec<u8>)>,
) -> String {
    let layout = open_layout(&[]);
    let mut s = model_keys(model, CONTROLS, view, CONTROLS);
    s.insert("_dom_classes".into(), json!([]));
    s.insert("layout".into(), reference(&layout));
    if let Some(style) = style {
        s.insert("style".into(), reference(&open_style(style)));
    }
    s.insert("tabbable".into(), Value::Null);
    s.insert("tooltip".into(), Value::Null);
    if let Value::Object(extra) = state {
        s.extend(extra);
    }
    hub().open(s, buffers)
}

/// The defaults of a control with a description.
fn described(description: &str) -> Value {
    json!({"description": description, "description_allow_html": false})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

fn callback<F: FnMut(&Value) + Send + 'static>(f: F) -> Callback {
    std::sync::Arc::new(std::sync::Mutex::new(Box::new(f)))
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

macro_rules! widget {
    ($t:ident) => {
        impl Widget for $t {
            fn model_id(&self) -> &str {
                &self.id
            }
            fn describe(&self) -> String {
                self.text()
            }
            fn static_html(&self) -> String {
                self.html()
            }
        }
        impl crate::display::value::CellValue for $t {
            fn evcxr_display(&self) {
                self.display()
            }
        }
    };
}

macro_rules! common_setters {
    () => {
        /// Sets the label shown beside it.
        pub fn description(self, d: &str) -> Self {
            hub().set(&self.id, vec![("description", d.into())]);
            self
        }
        /// Greys it out (or not): the user cannot change it.
        pub fn set_disabled(&self, disabled: bool) {
            hub().set(&self.id, vec![("disabled", disabled.into())]);
        }
    };
}

/// Sets layout properties (CSS: `width`, `height`, `margin`, ...) of any widget.
pub fn set_layout(w: &dyn Widget, props: &[(&str, &str)]) {
    let layout = hub().get(w.model_id(), "layout");
    if let Some(id) = layout.as_str().and_then(|r| r.strip_prefix("IPY_MODEL_")) {
        let values = props.iter().map(|(k, v)| (*k, Value::from(*v))).collect();
        hub().set(id, values);
    }
}

// ---------------------------------------------------------------- Button

/// A button; [`Button::on_click`] runs a closure when it is clicked.
#[derive(Debug, Clone)]
pub struct Button {
    id: String,
}

impl Button {
    pub fn new(description: &str) -> Button {
        let state = json!({
            "description": description, "button_style": "", "disabled": false, "icon": "",
        });
        Button {
            id: open_control(
                "ButtonModel",
                "ButtonView",
                Some("ButtonStyleModel"),
                state,
                vec![],
            ),
        }
    }
    /// `primary`, `success`, `info`, `warning`, `danger` or `` (ipywidgets' `button_style`).
    pub fn style(self, style: &str) -> Self {
        hub().set(&self.id, vec![("button_style", style.into())]);
        self
    }
    /// A Font Awesome icon name (`stop`, `check`, ...).
    pub fn icon(self, icon: &str) -> Self {
        hub().set(&self.id, vec![("icon", icon.into())]);
        self
    }
    /// Greys it out (or not).
    pub fn set_disabled(&self, disabled: bool) {
        hub().set(&self.id, vec![("disabled", disabled.into())]);
    }
    /// Changes its text.
    pub fn set_description(&self, d: &str) {
        hub().set(&self.id, vec![("description", d.into())]);
    }
    /// Runs `f` at every click (on the kernel's side; during a `fit`, between batches).
    pub fn on_click<F: FnMut() + Send + 'static>(&self, mut f: F) {
        hub().on(&self.id, On::Click, false, callback(move |_| f()));
    }
    /// As `on_click`, but runs at once even while a fit runs (for stopping it).
    pub(crate) fn on_click_now<F: FnMut() + Send + 'static>(&self, mut f: F) {
        hub().on(&self.id, On::Click, true, callback(move |_| f()));
    }
    fn text(&self) -> String {
        format!(
            "Button(description={})",
            quote(hub().get(&self.id, "description").as_str().unwrap_or(""))
        )
    }
    fn html(&self) -> String {
        let d = hub().get(&self.id, "description");
        format!(
            "<button disabled>{}</button>",
            html_escape(d.as_str().unwrap_or(""))
        )
    }
}
widget!(Button);

// ---------------------------------------------------------------- ToggleButton, Checkbox

macro_rules! bool_widget {
    ($t:ident, $model:literal, $view:literal, $style:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $t {
            id: String,
        }
        impl $t {
            pub fn new(value: bool, description: &str) -> $t {
                let mut state = merge(described(description), json!({"value": value, "disabled": false}));
                if $model == "CheckboxModel" {
                    state = merge(state, json!({"indent": true}));
                } else {
                    state = merge(state, json!({"button_style": "", "icon": ""}));
                }
                $t { id: open_control($model, $view, Some($style), state, vec![]) }
            }
            common_setters!();
            /// Whether it is on (as the user left it).
            pub fn value(&self) -> bool {
                hub().get(&self.id, "value").as_bool().unwrap_or(false)
            }
            pub fn set_value(&self, v: bool) {
                hub().set(&self.id, vec![("value", v.into())]);
            }
            /// Runs `f` with the new value at every change.
            pub fn on_change<F: FnMut(bool) + Send + 'static>(&self, mut f: F) {
                hub().on(&self.id, On::Change("value".into()), false,
                    callback(move |v| f(v.as_bool().unwrap_or(false))));
            }
            fn text(&self) -> String {
                format!("{}(value={}, description={})", stringify!($t), self.value(),
                    quote(hub().get(&self.id, "description").as_str().unwrap_or("")))
            }
            fn html(&self) -> String {
                format!("<label><input type='checkbox' disabled{}> {}</label>",
                    if self.value() { " checked" } else { "" },
                    html_escape(hub().get(&self.id, "description").as_str().unwrap_or("")))
            }
        }
        widget!($t);
    };
}

bool_widget!(
    Checkbox,
    "CheckboxModel",
    "CheckboxView",
    "CheckboxStyleModel",
    "A check box."
);
bool_widget!(
    ToggleButton,
    "ToggleButtonModel",
    "ToggleButtonView",
    "ToggleButtonStyleModel",
    "A button that stays pressed (on) or not (off)."
);

impl ToggleButton {
    /// `primary`, `success`, `info`, `warning`, `danger` or ``.
    pub fn style(self, style: &str) -> Self {
        self.set_style(style);
        self
    }
    /// Changes the colour (`button_style`) of a button shown already.
    pub fn set_style(&self, style: &str) {
        hub().set(&self.id, vec![("button_style", style.into())]);
    }
    /// A Font Awesome icon name (`trash`, `check`, ...).
    pub fn icon(self, icon: &str) -> Self {
        hub().set(&self.id, vec![("icon", icon.into())]);
        self
    }
}

// ---------------------------------------------------------------- sliders

/// An integer slider.
#[derive(Debug, Clone)]
pub struct IntSlider {
    id: String,
}

impl IntSlider {
    /// A slider over `min..=max` (step 1) at `value`.
    pub fn new(value: i64, min: i64, max: i64) -> IntSlider {
        let state = merge(
            described(""),
            json!({
                "value": value.clamp(min, max), "min": min, "max": max, "step": 1,
                "behavior": "drag-tap", "continuous_update": true, "disabled": false,
                "orientation": "horizontal", "readout": true, "readout_format": "d",
            }),
        );
        IntSlider {
            id: open_control(
                "IntSliderModel",
                "IntSliderView",
                Some("SliderStyleModel"),
                state,
                vec![],
            ),
        }
    }
    common_setters!();
    /// The step between values.
    pub fn step(self, step: i64) -> Self {
        hub().set(&self.id, vec![("step", step.into())]);
        self
    }
    pub fn value(&self) -> i64 {
        hub().get(&self.id, "value").as_i64().unwrap_or(0)
    }
    pub fn set_value(&self, v: i64) {
        hub().set(&self.id, vec![("value", v.into())]);
    }
    /// Runs `f` with the new value at every change.
    pub fn on_change<F: FnMut(i64) + Send + 'static>(&self, mut f: F) {
        hub().on(
            &self.id,
            On::Change("value".into()),
            false,
            callback(move |v| f(v.as_i64().unwrap_or(0))),
        );
    }
    fn text(&self) -> String {
        format!(
            "IntSlider(value={}, min={}, max={})",
            self.value(),
            hub().get(&self.id, "min"),
            hub().get(&self.id, "max")
        )
    }
    fn html(&self) -> String {
        format!("<code>{}</code>", html_escape(&self.text()))
    }
}
widget!(IntSlider);

/// A slider over powers of ten (ipywidgets' `FloatLogSlider`): for learning rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatLogSlider {
    id: String,
}

impl FloatLogSlider {
    /// A slider from `10^min_exp` to `10^max_exp` (steps of `step` in the exponent) at `value`.
    pub fn new(value: f64, min_exp: f64, max_exp: f64, step: f64) -> FloatLogSlider {
        let state = merge(
            described(""),
            json!({
                "value": value, "min": min_exp, "max": max_exp, "step": step, "base": 10.0,
                "behavior": "drag-tap", "continuous_update": true, "disabled": false,
                "orientation": "horizontal", "readout": true, "readout_format": ".3g",
            }),
        );
        FloatLogSlider {
            id: open_control(
                "FloatLogSliderModel",
                "FloatLogSliderView",
                Some("SliderStyleModel"),
                state,
                vec![],
            ),
        }
    }
    common_setters!();
    pub fn value(&self) -> f64 {
        hub().get(&self.id, "value").as_f64().unwrap_or(f64::NAN)
    }
    pub fn set_value(&self, v: f64) {
        hub().set(&self.id, vec![("value", v.into())]);
    }
    /// Runs `f` with the new value at every change.
    pub fn on_change<F: FnMut(f64) + Send + 'static>(&self, mut f: F) {
        hub().on(
            &self.id,
            On::Change("value".into()),
            false,
            callback(move |v| f(v.as_f64().unwrap_or(f64::NAN))),
        );
    }
    fn text(&self) -> String {
        format!("FloatLogSlider(value={:.3e})", self.value())
    }
    fn html(&self) -> String {
        format!("<code>{}</code>", html_escape(&self.text()))
    }
}
widget!(FloatLogSlider);

// ---------------------------------------------------------------- Dropdown

/// A drop-down list of options (labels); its value is the chosen label.
#[derive(Debug, Clone)]
pub struct Dropdown {
    id: String,
}

impl Dropdown {
    /// A drop-down over `options`, showing `value` (which must be one of them; `None`: nothing).
    pub fn new(options: &[&str], value: Option<&str>) -> crate::Result<Dropdown> {
        let index = match value {
            Some(v) => Some(options.iter().position(|o| *o == v).ok_or_else(|| {
                crate::Error::Msg(format!(
                    "Dropdown: the value {v:?} is not one of the options {options:?}"
                ))
            })?),
            None => None,
        };
        let state = merge(
            described(""),
            json!({"_options_labels": options, "index": index, "disabled": false}),
        );
        Ok(Dropdown {
            id: open_control(
                "DropdownModel",
                "DropdownView",
                Some("DescriptionStyleModel"),
                state,
                vec![],
            ),
        })
    }
    common_setters!();
    /// The options.
    pub fn options(&self) -> Vec<String> {
        match hub().get(&self.id, "_options_labels") {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        }
    }
    /// The index of the chosen option.
    pub fn index(&self) -> Option<usize> {
        hub().get(&self.id, "index").as_u64().map(|i| i as usize)
    }
    /// The chosen option.
    pub fn value(&self) -> Option<String> {
        self.index().and_then(|i| self.options().get(i).cloned())
    }
    /// Chooses an option by its label.
    pub fn set_value(&self, label: &str) -> crate::Result<()> {
        let i = self
            .options()
            .iter()
            .position(|o| o == label)
            .ok_or_else(|| {
                crate::Error::Msg(format!(
                    "Dropdown: {label:?} is not one of the options {:?}",
                    self.options()
                ))
            })?;
        hub().set(&self.id, vec![("index", i.into())]);
        Ok(())
    }
    /// Runs `f` with the newly chosen label at every change.
    pub fn on_change<F: FnMut(String) + Send + 'static>(&self, mut f: F) {
        let me = self.clone();
        hub().on(
            &self.id,
            On::Change("index".into()),
            false,
            callback(move |v| {
                let label = v
                    .as_u64()
                    .and_then(|i| me.options().get(i as usize).cloned());
                f(label.unwrap_or_default())
            }),
        );
    }
    fn text(&self) -> String {
        format!(
            "Dropdown(value={:?}, options={:?})",
            self.value(),
            self.options()
        )
    }
    fn html(&self) -> String {
        format!(
            "<code>{}</code>",
            html_escape(&self.value().unwrap_or_default())
        )
    }
}
widget!(Dropdown);

// ---------------------------------------------------------------- text

macro_rules! text_widget {
    ($t:ident, $model:literal, $view:literal, $style:literal, $doc:literal, $html:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $t {
            id: String,
        }
        impl $t {
            pub fn new(value: &str) -> $t {
                let mut state = merge(described(""), json!({"value": value, "placeholder": "\u{200b}"}));
                if $model == "TextModel" {
                    state = merge(state, json!({"continuous_update": true, "disabled": false}));
                }
                $t { id: open_control($model, $view, Some($style), state, vec![]) }
            }
            /// Sets the label shown beside it.
            pub fn description(self, d: &str) -> Self {
                hub().set(&self.id, vec![("description", d.into())]);
                self
            }
            pub fn value(&self) -> String {
                hub().get(&self.id, "value").as_str().unwrap_or("").to_string()
            }
            pub fn set_value(&self, v: &str) {
                hub().set(&self.id, vec![("value", v.into())]);
            }
            /// Runs `f` with the new value at every change.
            pub fn on_change<F: FnMut(String) + Send + 'static>(&self, mut f: F) {
                hub().on(&self.id, On::Change("value".into()), false,
                    callback(move |v| f(v.as_str().unwrap_or("").to_string())));
            }
            fn text(&self) -> String {
                format!("{}(value={})", stringify!($t), quote(&self.value()))
            }
            fn html(&self) -> String {
                let f: fn(&str) -> String = $html;
                f(&self.value())
            }
        }
        widget!($t);
    };
}

text_widget!(
    Text,
    "TextModel",
    "TextView",
    "TextStyleModel",
    "A one-line text field.",
    |v| format!(
        "<input type='text' disabled value='{}'>",
        html_escape(v).replace('\'', "&#39;")
    )
);
text_widget!(
    Label,
    "LabelModel",
    "LabelView",
    "LabelStyleModel",
    "A line of text.",
    |v| format!("<span>{}</span>", html_escape(v))
);
text_widget!(
    HTML,
    "HTMLModel",
    "HTMLView",
    "HTMLStyleModel",
    "HTML, shown as it is.",
    |v| v.to_string()
);

// ---------------------------------------------------------------- Image

/// An image (PNG or JPEG bytes), sent to the frontend as a binary buffer.
#[derive(Debug, Clone)]
pub struct Image {
    id: String,
}

impl Image {
    /// An image from encoded bytes in `format` (`png`, `jpeg`).
    pub fn new(bytes: Vec<u8>, format: &str) -> Image {
        let state = json!({"format": format, "width": "", "height": ""});
        Image {
            id: open_control(
                "ImageModel",
                "ImageView",
                None,
                state,
                vec![("value".into(), bytes)],
            ),
        }
    }
    /// A PNG image.
    pub fn png(bytes: Vec<u8>) -> Image {
        Image::new(bytes, "png")
    }
    /// The width on screen (CSS, `"128"` or `"128px"`).
    pub fn width(self, w: &str) -> Self {
        hub().set(&self.id, vec![("width", w.into())]);
        self
    }
    /// Replaces the picture.
    pub fn set_bytes(&self, bytes: Vec<u8>) {
        hub().set_bytes(&self.id, "value", bytes);
    }
    pub fn bytes(&self) -> Vec<u8> {
        hub().get_bytes(&self.id, "value")
    }
    fn text(&self) -> String {
        format!(
            "Image({} bytes of {})",
            self.bytes().len(),
            hub().get(&self.id, "format").as_str().unwrap_or("png")
        )
    }
    fn html(&self) -> String {
        use base64::Engine as _;
        let format = hub().get(&self.id, "format");
        let width = hub().get(&self.id, "width");
        format!(
            "<img src='data:image/{};base64,{}' width='{}'>",
            format.as_str().unwrap_or("png"),
            base64::engine::general_purpose::STANDARD.encode(self.bytes()),
            width.as_str().unwrap_or("")
        )
    }
}
widget!(Image);

// ---------------------------------------------------------------- boxes

/// What a box keeps of its children for the static form.
fn children_state(children: &[&dyn Widget]) -> (Value, Vec<String>) {
    let refs = children.iter().map(|c| reference(c.model_id())).collect();
    let html = children.iter().map(|c| c.static_html()).collect();
    (Value::Array(refs), html)
}

macro_rules! box_widget {
    ($t:ident, $model:literal, $view:literal, $doc:literal, $css:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $t {
            id: String,
            children_html: Vec<String>,
        }
        impl $t {
            pub fn new(children: &[&dyn Widget]) -> $t {
                let (refs, children_html) = children_state(children);
                let state = json!({"children": refs, "box_style": ""});
                $t { id: open_control($model, $view, None, state, vec![]), children_html }
            }
            fn text(&self) -> String {
                format!("{}({} children)", stringify!($t), self.children_html.len())
            }
            fn html(&self) -> String {
                format!("<div style='{}'>{}</div>", $css, self.children_html.join(""))
            }
        }
        widget!($t);
    };
}

box_widget!(
    HBox,
    "HBoxModel",
    "HBoxView",
    "Children side by side.",
    "display:flex;flex-direction:row;gap:4px"
);
box_widget!(
    VBox,
    "VBoxModel",
    "VBoxView",
    "Children one above the other.",
    "display:flex;flex-direction:column;gap:4px"
);
box_widget!(
    GridBox,
    "GridBoxModel",
    "GridBoxView",
    "Children in a CSS grid (set its columns with [`GridBox::columns`]).",
    "display:grid;grid-template-columns:repeat(4,auto);gap:4px"
);

impl GridBox {
    /// The grid's columns (CSS `grid-template-columns`, e.g. `"repeat(4, 160px)"`).
    pub fn columns(self, template: &str) -> Self {
        set_layout(&self, &[("grid_template_columns", template)]);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_carry_ipywidgets_8_model_names_and_defaults() {
        // (no kernel here: the models live in the hub only)
        let s = IntSlider::new(30, 0, 10).description("n");
        assert_eq!(s.value(), 10, "clamped into min..=max");
        assert_eq!(hub().get(&s.id, "_model_name"), "IntSliderModel");
        assert_eq!(
            hub().get(&s.id, "_model_module"),
            "@jupyter-widgets/controls"
        );
        assert_eq!(hub().get(&s.id, "_model_module_version"), "2.0.0");
        assert_eq!(hub().get(&s.id, "description"), "n");
        let layout = hub().get(&s.id, "layout");
        let layout_id = layout.as_str().unwrap().strip_prefix("IPY_MODEL_").unwrap();
        assert_eq!(hub().get(layout_id, "_model_name"), "LayoutModel");
        assert_eq!(
            hub().get(layout_id, "_model_module"),
            "@jupyter-widgets/base"
        );
        let style = hub().get(&s.id, "style");
        let style_id = style.as_str().unwrap().strip_prefix("IPY_MODEL_").unwrap();
        assert_eq!(hub().get(style_id, "_model_name"), "SliderStyleModel");
        assert_eq!(hub().get(style_id, "_view_module"), "@jupyter-widgets/base");
    }

    #[test]
    fn values_set_from_code_run_change_callbacks() {
        let d = Dropdown::new(&["cat", "dog"], Some("dog")).unwrap();
        assert_eq!(d.value().as_deref(), Some("dog"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        d.on_change(move |v| s2.lock().unwrap().push(v));
        d.set_value("cat").unwrap();
        d.set_value("cat").unwrap(); // no change, no call
        assert_eq!(*seen.lock().unwrap(), vec!["cat".to_string()]);
        let e = d.set_value("bird").unwrap_err().to_string();
        assert!(e.contains("\"bird\" is not one of the options"), "{e}");
        assert!(Dropdown::new(&["a"], Some("b")).is_err());
    }

    #[test]
    fn static_forms_without_a_kernel() {
        let b = Button::new("Go <now>");
        assert_eq!(b.describe(), "Button(description=\"Go <now>\")");
        assert!(b.static_html().contains("Go &lt;now&gt;"));
        let img = Image::png(vec![1, 2, 3]);
        assert!(img.static_html().contains("base64,AQID"));
        let h = HBox::new(&[&b, &img]);
        assert!(h.static_html().contains("<button") && h.static_html().contains("<img"));
    }
}
