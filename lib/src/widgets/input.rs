//! `fastai::input`: a line of text from the user, as Python's `input()`.
//!
//! Under the fastai kernel the kernel asks the frontend (an `input_request` on Jupyter's stdin
//! channel: JupyterLab shows a text box under the cell); in a plain program the terminal's stdin
//! is read. Under the stock evcxr kernel there is no way to ask (evcxr owns the cell process's
//! stdin), so it is an error saying so.

use std::io::{BufRead, Write};

use super::hub::hub;
use crate::display::{frontend, Frontend};
use crate::error::{Error, Result};

/// Asks the user for a line of text (`prompt` is shown before the box) and returns it, without
/// the line end.
///
/// ```no_run
/// let name = fastai::input("Your name: ")?;
/// # Ok::<(), fastai::Error>(())
/// ```
pub fn input(prompt: &str) -> Result<String> {
    ask(prompt, false)
}

/// As [`input`], but what is typed is hidden (a password, an API key).
pub fn input_password(prompt: &str) -> Result<String> {
    ask(prompt, true)
}

fn ask(prompt: &str, password: bool) -> Result<String> {
    match frontend() {
        Frontend::FastaiKernel => {
            if !hub().live() {
                return Err(Error::Msg(
                    "input(): the fastai kernel's back channel is not reachable from this cell \
                     process (FASTAI_COMM_SOCKET), so it cannot ask; restart the kernel"
                        .into(),
                ));
            }
            hub()
                .input(prompt, password)
                .map_err(|e| Error::Msg(format!("input(): {e}")))
        }
        Frontend::Evcxr => Err(Error::Msg(
            "input() needs the fastai kernel (\"Rust (fastai)\"): under the stock evcxr kernel \
             the cell process's stdin belongs to evcxr"
                .into(),
        )),
        Frontend::Terminal => {
            print!("{prompt}");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            let n = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::Msg(format!("input(): cannot read stdin: {e}")))?;
            if n == 0 {
                return Err(Error::Msg(
                    "input(): stdin is at its end (no line to read)".into(),
                ));
            }
            let end = line.trim_end_matches(['\n', '\r']).len();
            line.truncate(end);
            Ok(line)
        }
    }
}
