//! Small helpers shared by the devkit's binaries: flag parsing without a CLI framework,
//! waiting for a stop signal, and writing an address file atomically.

/// Walks a command line of `--flag value`, `--flag=value` and bare arguments.
#[derive(Debug)]
pub struct Flags<I> {
    args: I,
}

impl<I: Iterator<Item = String>> Flags<I> {
    /// Wraps the arguments (without the program name).
    pub fn new(args: impl IntoIterator<IntoIter = I, Item = String>) -> Self {
        Flags {
            args: args.into_iter(),
        }
    }

    /// The next flag or bare argument, with its inline `=value` when given that way.
    pub fn next_flag(&mut self) -> Option<(String, Option<String>)> {
        let arg = self.args.next()?;
        Some(match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        })
    }

    /// The value of flag `name`: its inline `=value`, else the next argument.
    ///
    /// # Errors
    /// The command line ends where the value should be.
    pub fn value(&mut self, name: &str, inline: &mut Option<String>) -> Result<String, String> {
        inline
            .take()
            .or_else(|| self.args.next())
            .ok_or_else(|| format!("{name} needs a value"))
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Writes `contents` to `path` atomically (temporary file + rename), so a watcher never
/// reads a partial address.
///
/// # Errors
/// The file cannot be written or renamed.
pub fn write_atomically(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_take_inline_or_following_values() {
        let args = ["--a=1", "--b", "2", "file", "--c"].map(String::from);
        let mut flags = Flags::new(args);
        let (flag, mut inline) = flags.next_flag().unwrap();
        assert_eq!(
            (flag.as_str(), flags.value("--a", &mut inline)),
            ("--a", Ok("1".into()))
        );
        let (flag, mut inline) = flags.next_flag().unwrap();
        assert_eq!(
            (flag.as_str(), flags.value("--b", &mut inline)),
            ("--b", Ok("2".into()))
        );
        assert_eq!(flags.next_flag(), Some(("file".into(), None)));
        let (_, mut inline) = flags.next_flag().unwrap();
        assert_eq!(
            flags.value("--c", &mut inline),
            Err("--c needs a value".into())
        );
    }
}
