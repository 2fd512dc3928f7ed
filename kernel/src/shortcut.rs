//! One compilation instead of two for a cell that ends in a plain value.
//!
//! evcxr shows a cell's final expression by first compiling `(expr).evcxr_display();` (for types
//! with a rich display of their own) and, when rustc answers "no method `evcxr_display`" (E0599),
//! compiling the cell again with `format!("{:?}", ...)`. For `1 + 1`, `data.classes` or
//! `learn.recorder.losses` the first compilation always fails, and with the library loaded each
//! one costs a cargo build (about 0.25 s here).
//!
//! The kernel defines, as a module in the session, a trait with an `evcxr_display`
//! method for the plain standard types (numbers, strings, `Vec`, `Option`, tuples, maps...)
//! that prints their `Debug` text exactly as evcxr's fallback would. The first compilation then
//! succeeds. No type that has a rich display of its own is covered (none of these types has
//! one, and none of them dereferences to one), so rich outputs are unchanged; every other type
//! goes through evcxr's usual two steps.
//!
//! The module's body is `include!`d from a file in the build folder rather than written in the
//! cell: evcxr decides whether to fall back by where rustc's diagnostic points, and a note that
//! pointed into the session's own code ("`FastaiKernelPlainDisplay` defines an item
//! `evcxr_display`") would make it report the error instead of falling back.
//!
//! evcxr's `:fmt` and `:types` change how the fallback prints. Around a cell that uses them the
//! kernel redefines the module: the trait without implementations (evcxr's own fallback,
//! whatever the format) while the cell runs, then with the new format when it is `{:?}` or
//! `{:#?}` and types are off.

use std::path::{Path, PathBuf};

/// The trait's name in the session (visible to Tab completion, so it says whose it is).
const TRAIT: &str = "FastaiKernelPlainDisplay";

/// Plain types without generic parameters.
const SIMPLE: &[&str] = &[
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "f32",
    "f64",
    "bool",
    "char",
    "str",
    "String",
    "std::path::Path",
    "std::path::PathBuf",
    "std::time::Duration",
];

/// Standard containers: (generic parameters with their bounds, the type).
const GENERIC: &[(&str, &str)] = &[
    ("T: std::fmt::Debug", "Vec<T>"),
    ("T: std::fmt::Debug", "[T]"),
    ("T: std::fmt::Debug, const N: usize", "[T; N]"),
    ("T: std::fmt::Debug", "Option<T>"),
    ("T: std::fmt::Debug, E: std::fmt::Debug", "Result<T, E>"),
    ("T: std::fmt::Debug", "std::collections::VecDeque<T>"),
    (
        "K: std::fmt::Debug, V: std::fmt::Debug, S",
        "std::collections::HashMap<K, V, S>",
    ),
    (
        "K: std::fmt::Debug, V: std::fmt::Debug",
        "std::collections::BTreeMap<K, V>",
    ),
    ("T: std::fmt::Debug, S", "std::collections::HashSet<T, S>"),
    ("T: std::fmt::Debug", "std::collections::BTreeSet<T>"),
    ("A: std::fmt::Debug, B: std::fmt::Debug", "(A, B)"),
    (
        "A: std::fmt::Debug, B: std::fmt::Debug, C: std::fmt::Debug",
        "(A, B, C)",
    ),
    (
        "A: std::fmt::Debug, B: std::fmt::Debug, C: std::fmt::Debug, D: std::fmt::Debug",
        "(A, B, C, D)",
    ),
];

/// How evcxr prints final values, as far as the kernel has seen (`:fmt`, `:types`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub format: String,
    pub types: bool,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            format: "{:?}".into(),
            types: false,
        }
    }
}

/// Which definition of the trait the session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The trait without implementations: every value goes through evcxr's own fallback.
    Off,
    /// `{:?}`
    Plain,
    /// `{:#?}`
    Pretty,
}

impl Variant {
    fn format_string(self) -> Option<&'static str> {
        match self {
            Variant::Off => None,
            Variant::Plain => Some("{:?}"),
            Variant::Pretty => Some("{:#?}"),
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Variant::Off => "fastai_kernel_display_off.rs",
            Variant::Plain => "fastai_kernel_display_plain.rs",
            Variant::Pretty => "fastai_kernel_display_pretty.rs",
        }
    }
}

impl Format {
    /// The definition that prints exactly what evcxr would with this format.
    pub fn variant(&self) -> Variant {
        match (self.types, self.format.as_str()) {
            (false, "{:?}") => Variant::Plain,
            (false, "{:#?}") => Variant::Pretty,
            _ => Variant::Off,
        }
    }

    /// Applies the `:fmt` and `:types` commands of a cell, as evcxr does (`:fmt` alone resets
    /// the format, `:types` toggles). Returns whether the cell had any.
    pub fn apply_commands(&mut self, code: &str) -> bool {
        let mut any = false;
        for line in code.lines() {
            let line = line.trim();
            let (command, args) = match line.split_once(char::is_whitespace) {
                Some((c, a)) => (c, a.trim()),
                None => (line, ""),
            };
            match command {
                ":fmt" => {
                    self.format = if args.is_empty() { "{:?}" } else { args }.to_string();
                    any = true;
                }
                ":types" => {
                    self.types = !self.types;
                    any = true;
                }
                _ => {}
            }
        }
        any
    }
}

/// Whether a cell has commands that change how values print.
pub fn changes_format(code: &str) -> bool {
    Format::default().apply_commands(code)
}

/// The module's body: the trait, and unless `Off`, its implementations.
pub fn module_body(variant: Variant) -> String {
    let mut code = format!(
        "// Written by fastai-kernel (see its shortcut.rs): plain values shown in one compilation.\n\
         pub trait {TRAIT} {{\n    fn evcxr_display(&self);\n}}\n"
    );
    let Some(format_string) = variant.format_string() else {
        return code;
    };
    // Written like evcxr's own text/plain output: one locked write of the begin line, the
    // text and the end line.
    let (begin, end) = (fastai_wire::EVCXR_BEGIN, fastai_wire::EVCXR_END);
    code.push_str(&format!(
        "fn send_plain(text: &str) {{\n    use std::io::Write;\n    let stdout = std::io::stdout();\n    \
         let mut out = stdout.lock();\n    \
         let _ = write!(out, \"{begin} text/plain\\n{{}}\\n{end}\\n\", text);\n    \
         let _ = out.flush();\n}}\n",
    ));
    let body = format!("{{ send_plain(&format!({format_string:?}, self)) }}");
    for ty in SIMPLE {
        code.push_str(&format!(
            "impl {TRAIT} for {ty} {{\n    #[inline]\n    fn evcxr_display(&self) {body}\n}}\n"
        ));
    }
    // A cell that ends in a `for` loop or a unit `match` shows nothing, as Python shows nothing
    // for None (stock evcxr prints `()`).
    code.push_str(&format!(
        "impl {TRAIT} for () {{\n    #[inline]\n    fn evcxr_display(&self) {{}}\n}}\n"
    ));
    for (params, ty) in GENERIC {
        code.push_str(&format!(
            "impl<{params}> {TRAIT} for {ty} {{\n    #[inline]\n    fn evcxr_display(&self) {body}\n}}\n"
        ));
    }
    code
}

/// Writes the module's body for `variant` into `dir` (one file per variant, so a module
/// defined earlier never sees its file change) and returns the session code that defines the
/// module from it and imports the trait.
pub fn definition(dir: &Path, variant: Variant) -> std::io::Result<String> {
    let file: PathBuf = dir.join(variant.file_name());
    let body = module_body(variant);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(body.as_str()) {
        let tmp = file.with_extension("rs.tmp");
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &file)?;
    }
    Ok(format!(
        "mod fastai_kernel_display {{ include!({:?}); }}\nuse fastai_kernel_display::{TRAIT};",
        file.display().to_string()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_fmt_and_types_like_evcxr() {
        let mut f = Format::default();
        assert!(!f.apply_commands("let x = 1;\nx + 1"));
        assert!(f.apply_commands(":fmt {:#?}"));
        assert_eq!(f.format, "{:#?}");
        assert_eq!(f.variant(), Variant::Pretty);
        assert!(f.apply_commands("  :fmt   {:x}  \n1"));
        assert_eq!(f.format, "{:x}");
        assert_eq!(f.variant(), Variant::Off);
        assert!(f.apply_commands(":fmt"));
        assert_eq!(f, Format::default());
        assert!(f.apply_commands(":types"));
        assert!(f.types);
        assert_eq!(f.variant(), Variant::Off);
        f.apply_commands(":types");
        assert!(!f.types);
        // other commands that merely start alike are not taken for these
        assert!(!f.apply_commands(":fmtx {:x}\n:typesx"));
    }

    #[test]
    fn definition_follows_the_variant() {
        assert_eq!(Format::default().variant(), Variant::Plain);
        let plain = module_body(Variant::Plain);
        assert!(plain.contains("impl FastaiKernelPlainDisplay for i32"));
        assert!(plain.contains("format!(\"{:?}\", self)"));
        // evcxr's text/plain block, written in one go
        assert!(plain.contains(
            "let _ = write!(out, \"EVCXR_BEGIN_CONTENT text/plain\\n{}\\nEVCXR_END_CONTENT\\n\", text);"
        ));
        assert!(module_body(Variant::Pretty).contains("format!(\"{:#?}\", self)"));
        let off = module_body(Variant::Off);
        assert!(off.contains("pub trait FastaiKernelPlainDisplay"));
        assert!(!off.contains("impl"));

        let dir =
            std::env::temp_dir().join(format!("fastai-kernel-shortcut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let code = definition(&dir, Variant::Plain).unwrap();
        assert!(code.starts_with("mod fastai_kernel_display { include!("));
        let file = dir.join("fastai_kernel_display_plain.rs");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), plain);
        assert!(code.contains(&file.display().to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
