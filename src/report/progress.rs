//! Progress bars for long work (a rebuild, a backup, a log rewrite, a
//! salvage), drawn on stderr with indicatif. Drawn only for a human
//! report without `-q` on a terminal, and only for work that has run
//! for `DELAY`: short work draws nothing at all. Each bar is cleared when
//! its work ends, so the report that follows is the same as without it.
//!
//! A bar starts hidden; a small thread per task waits for the delay (or
//! the end of the task, whichever comes first) and only then points the
//! bar at the terminal, with a steady tick so that a phase without
//! updates (an index build, a commit) still shows time passing.

use std::io::IsTerminal;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{escape, Format};
use crate::safety::progress::{Progress, Silent, Task};

/// How long work runs before its bar appears.
pub const DELAY: Duration = Duration::from_secs(1);

/// How often a visible bar is redrawn when nothing else moves it.
const TICK: Duration = Duration::from_millis(100);

/// The sink a command reports long work to: bars on stderr for a human,
/// not quiet report when stderr is a terminal; nothing otherwise (CI logs,
/// `--format json`, `-q`).
pub fn for_stderr(format: Format, delay: Duration) -> Box<dyn Progress> {
    match draws(format, std::io::stderr().is_terminal()) {
        true => Box::new(Bars { delay, target: ProgressDrawTarget::stderr }),
        false => Box::new(Silent),
    }
}

/// Whether bars are drawn for `format` on a stderr that is (or is not) a terminal.
fn draws(format: Format, terminal: bool) -> bool {
    terminal && format == Format::Human { quiet: false }
}

/// Draws each task that lasts longer than `delay` as a bar on `target`.
pub struct Bars {
    delay: Duration,
    target: fn() -> ProgressDrawTarget,
}

impl Progress for Bars {
    fn task(&self, label: &str, total: Option<u64>) -> Box<dyn Task> {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())
            .with_style(style(total.is_some()))
            .with_message(escape(label).into_owned());
        let ended = Arc::new(Ended::default());
        let reveal = {
            let (bar, ended, delay, target) = (bar.clone(), Arc::clone(&ended), self.delay, self.target);
            // No thread, no bar: the work goes on all the same.
            std::thread::Builder::new().name("progress".into()).spawn(move || ended.reveal(&bar, delay, target)).ok()
        };
        Box::new(Drawn { bar, total, ended, reveal })
    }
}

fn style(bounded: bool) -> ProgressStyle {
    let template = match bounded {
        true => "{spinner} {wide_msg} [{bar:20}] {percent:>3}%  {elapsed} (eta {eta})",
        false => "{spinner} {wide_msg}  {elapsed}",
    };
    ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ").tick_chars("|/-\\ ")
}

/// Set when the task ends, waking the thread that would reveal its bar.
#[derive(Default)]
struct Ended {
    ended: Mutex<bool>,
    wake: Condvar,
}

impl Ended {
    /// Shows `bar` on `target` once `delay` has passed, unless the task
    /// ended first. Holds the lock while it does, so the end of the task
    /// comes strictly before or after.
    fn reveal(&self, bar: &ProgressBar, delay: Duration, target: fn() -> ProgressDrawTarget) {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let (ended, _) = self.wake.wait_timeout_while(ended, delay, |ended| !*ended).unwrap_or_else(|e| e.into_inner());
        if !*ended {
            bar.set_draw_target(target());
            bar.enable_steady_tick(TICK);
        }
    }

    fn end(&self) {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

struct Drawn {
    bar: ProgressBar,
    total: Option<u64>,
    ended: Arc<Ended>,
    reveal: Option<JoinHandle<()>>,
}

impl Task for Drawn {
    fn advance(&self, done: u64) {
        // An estimated total can be passed: the bar stays full.
        self.bar.set_position(self.total.map_or(done, |total| done.min(total)));
    }

    fn finish(self: Box<Self>) {} // `drop` ends it
}

impl Drop for Drawn {
    fn drop(&mut self) {
        self.ended.end();
        if let Some(thread) = self.reveal.take() {
            let _ = thread.join();
        }
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use indicatif::TermLike;

    use super::*;

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }

        fn put(&self, s: &str) -> io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            self.put(&format!("<up {n}>"))
        }
        fn move_cursor_down(&self, n: usize) -> io::Result<()> {
            self.put(&format!("<down {n}>"))
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.put(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.put(s)
        }
        fn clear_line(&self) -> io::Result<()> {
            self.put("<clear>")
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    // One screen per test: `target` is a plain function.
    fn short_screen() -> &'static Screen {
        static SCREEN: std::sync::OnceLock<Screen> = std::sync::OnceLock::new();
        SCREEN.get_or_init(Screen::default)
    }

    fn long_screen() -> &'static Screen {
        static SCREEN: std::sync::OnceLock<Screen> = std::sync::OnceLock::new();
        SCREEN.get_or_init(Screen::default)
    }

    #[test]
    fn work_shorter_than_the_delay_draws_nothing() {
        let bars = Bars {
            delay: Duration::from_secs(5),
            target: || ProgressDrawTarget::term_like(Box::new(short_screen().clone())),
        };
        let task = bars.task("rewrite logs/a.jsonl", Some(100));
        for done in [10, 50, 100] {
            task.advance(done);
        }
        task.finish();
        assert_eq!(short_screen().text(), "");
    }

    #[test]
    fn longer_work_draws_a_bar_and_clears_it_at_the_end() {
        let bars = Bars {
            delay: Duration::from_millis(50),
            target: || ProgressDrawTarget::term_like(Box::new(long_screen().clone())),
        };
        let task = bars.task("rebuild table t in app\x1b.db", Some(200));
        task.advance(100);
        std::thread::sleep(Duration::from_millis(400));
        let drawn = long_screen().text();
        assert!(drawn.contains("rebuild table t in app\\u{1b}.db"), "label, escaped: {drawn:?}");
        assert!(drawn.contains(" 50%"), "{drawn:?}");
        task.finish();
        let after = long_screen().text();
        let last_drawn = after.rfind("(eta").expect("a bar was drawn");
        assert!(after[last_drawn..].contains("<clear>"), "the last bar is cleared: {after:?}");
    }

    #[test]
    fn bars_only_for_a_human_report_without_quiet_on_a_terminal() {
        assert!(draws(Format::Human { quiet: false }, true));
        assert!(!draws(Format::Human { quiet: false }, false), "not a terminal");
        assert!(!draws(Format::Human { quiet: true }, true), "-q");
        assert!(!draws(Format::Json, true));
        assert!(!draws(Format::Junit, true));
    }
}
