//! Everything printed to a person: masked, coloured only on a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plinth_core::diag::{self, Diagnostic};
use plinth_core::engine::{Outcome, Reporter, StepKind, StepResult};
use plinth_core::plan::render::{mask_values, Draw, DEFAULT_WIDTH};

use super::{CliError, GlobalArgs};

#[derive(Clone)]
pub struct Ui {
    pub color: bool,
    /// How wide plans are drawn: the terminal's width, else `COLUMNS`, else 100.
    pub width: usize,
    secrets: Arc<Mutex<Vec<String>>>,
    /// Starts every line (`[ana] `) when several environments print at once.
    prefix: Option<Arc<str>>,
    /// The live status lines at the bottom of a terminal, redrawn under whatever is printed.
    status: Arc<Mutex<StatusLines>>,
    /// Stdout is a terminal: a run may show a live status line there.
    terminal: bool,
}

/// The live status lines at the bottom of a terminal: one per environment under way (one in
/// all for a single environment, one per student of a roster), each keyed by its
/// environment's prefix (`""` alone), in the order they began.
#[derive(Default)]
struct StatusLines {
    rows: Vec<(String, String)>,
    /// Environments whose runs ended: their line is not drawn again (a late tick).
    ended: std::collections::BTreeSet<String>,
    /// How many lines are on the screen now.
    drawn: usize,
}

/// Erases the terminal line the cursor is on.
const ERASE_LINE: &str = "\r\x1b[2K";
/// Moves the cursor one line up and erases that line.
const ERASE_LINE_ABOVE: &str = "\x1b[1A\x1b[2K";

impl StatusLines {
    /// Erases the lines drawn; the cursor ends where the first of them began.
    fn erase(&mut self, out: &mut impl Write) {
        if self.drawn > 0 {
            let _ = write!(
                out,
                "{ERASE_LINE}{}",
                ERASE_LINE_ABOVE.repeat(self.drawn - 1)
            );
        }
        self.drawn = 0;
    }

    /// Draws the lines, the cursor staying at the end of the last one. Each is cut to the
    /// terminal's width and there are fewer than its height (a line that wrapped, or one
    /// scrolled off the top, could not be erased).
    fn draw(&mut self, out: &mut impl Write) {
        if self.rows.is_empty() {
            return; // a pipe, or nothing under way: no size to ask the terminal for
        }
        let (width, height) = screen_size();
        let room = height.saturating_sub(1).max(1);
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .map(|(_, line)| cut_visible(line, width.saturating_sub(1)))
            .collect();
        if lines.len() > room {
            let hidden = lines.len() - (room - 1);
            lines.truncate(room - 1);
            lines.push(format!("… and {hidden} more"));
        }
        let _ = write!(out, "{}", lines.join("\n"));
        self.drawn = lines.len();
    }

    /// Erases every line for good (quitting at once).
    fn clear(&mut self, out: &mut impl Write) {
        self.rows.clear();
        self.redraw(out);
    }

    fn redraw(&mut self, out: &mut impl Write) {
        self.erase(out);
        self.draw(out);
        let _ = out.flush();
    }
}

/// Runs `print` with the live status lines, if any are drawn, erased before and drawn again
/// after, so what is printed stays on the screen above them. (Stdout's lock is reentrant:
/// `print` may take it again.)
fn above_status<R>(status: &Mutex<StatusLines>, print: impl FnOnce() -> R) -> R {
    let mut status = lock(status);
    let mut stdout = std::io::stdout().lock();
    status.erase(&mut stdout);
    let _ = stdout.flush();
    let printed = print();
    status.draw(&mut stdout);
    let _ = stdout.flush();
    printed
}

impl Ui {
    pub fn new(global: &GlobalArgs) -> Ui {
        let terminal = std::io::stdout().is_terminal();
        let color = !global.no_color && terminal;
        Ui {
            color,
            terminal,
            status: Arc::default(),
            width: output_width(),
            secrets: Arc::new(Mutex::new(Vec::new())),
            prefix: None,
        }
    }

    /// How plans are drawn on this output.
    pub fn draw(&self) -> Draw {
        Draw {
            color: self.color,
            width: self.width,
        }
    }

    /// The same output with every line starting `[name] `, so the lines of environments
    /// that run side by side stay readable when they interleave.
    pub fn prefixed(&self, name: &str) -> Ui {
        Ui {
            prefix: Some(self.bold(&format!("[{name}]")).into()),
            ..self.clone()
        }
    }

    /// Masked, and with the prefix at the start of each line.
    fn decorate(&self, text: &str) -> String {
        let text = self.mask(text);
        let Some(prefix) = &self.prefix else {
            return text;
        };
        let mut out = String::with_capacity(text.len() + 16);
        for line in text.split_inclusive('\n') {
            out.push_str(prefix);
            if line != "\n" {
                out.push(' ');
            }
            out.push_str(line);
        }
        out
    }

    /// Values that must never be printed (sensitive variables).
    pub fn add_secrets(&self, values: Vec<String>) {
        if let Ok(mut s) = self.secrets.lock() {
            s.extend(values);
        }
    }

    /// Where `tracing` writes: stderr, with sensitive values masked like everything else.
    pub fn log_writer(&self) -> impl Fn() -> MaskedStderr + Send + Sync + 'static {
        let (secrets, status) = (self.secrets.clone(), self.status.clone());
        move || MaskedStderr {
            secrets: secrets.clone(),
            status: status.clone(),
        }
    }

    pub fn mask(&self, text: &str) -> String {
        match self.secrets.lock() {
            Ok(s) if !s.is_empty() => mask_values(text, &s),
            _ => text.to_string(),
        }
    }

    /// A line to stdout.
    pub fn out(&self, text: &str) {
        self.out_raw(&format!("{text}\n"));
    }

    /// Text to stdout as is (already ends with a newline), under which a live status line
    /// is drawn again.
    pub fn out_raw(&self, text: &str) {
        above_status(&self.status, || {
            let _ = write!(std::io::stdout().lock(), "{}", self.decorate(text));
        });
    }

    /// Whether a run may draw a live status line: on a terminal.
    pub fn live(&self) -> bool {
        self.terminal
    }

    /// This environment's key among the status lines.
    fn status_key(&self) -> String {
        self.prefix.as_deref().unwrap_or_default().to_string()
    }

    /// Draws `text` as this environment's live status line (after its prefix); nothing once
    /// its run has ended.
    fn set_status(&self, text: &str) {
        let key = self.status_key();
        let mut status = lock(&self.status);
        if status.ended.contains(&key) {
            return;
        }
        let line = match &self.prefix {
            Some(prefix) => format!("{prefix} {}", self.mask(text)),
            None => self.mask(text),
        };
        match status.rows.iter_mut().find(|(k, _)| *k == key) {
            Some(row) => row.1 = line,
            None => status.rows.push((key, line)),
        }
        status.redraw(&mut std::io::stdout().lock());
    }

    /// A run starts: its status line may be drawn (again).
    fn begin_status(&self) {
        lock(&self.status).ended.remove(&self.status_key());
    }

    /// Erases every live status line (plinth is quitting at once).
    pub fn clear_status(&self) {
        lock(&self.status).clear(&mut std::io::stdout().lock());
    }

    /// Erases this environment's live status line for good: the run it showed is over.
    pub fn end_status(&self) {
        let key = self.status_key();
        let mut status = lock(&self.status);
        status.rows.retain(|(k, _)| *k != key);
        status.ended.insert(key);
        status.redraw(&mut std::io::stdout().lock());
    }

    /// A line to stderr (on a terminal, above the live status line).
    pub fn err(&self, text: &str) {
        above_status(&self.status, || {
            eprint!("{}", self.decorate(&format!("{text}\n")));
        });
    }

    pub fn bold(&self, text: &str) -> String {
        if self.color {
            let s = anstyle::Style::new().bold();
            format!("{}{text}{}", s.render(), s.render_reset())
        } else {
            text.to_string()
        }
    }

    pub fn colored(&self, color: anstyle::AnsiColor, text: &str) -> String {
        if self.color {
            let s = anstyle::Style::new().fg_color(Some(color.into())).bold();
            format!("{}{text}{}", s.render(), s.render_reset())
        } else {
            text.to_string()
        }
    }

    pub fn diagnostic(&self, d: &Diagnostic) {
        let report = diag::to_report(d);
        self.err(&format!("{report:?}"));
    }

    pub fn error(&self, err: &CliError) {
        match err {
            CliError::Diagnostics(diags) => {
                for d in &diags.0 {
                    self.diagnostic(d);
                }
                let n = diags.errors().count();
                self.err(&format!(
                    "{}: {n} problem{} found",
                    self.colored(anstyle::AnsiColor::Red, "error"),
                    if n == 1 { "" } else { "s" }
                ));
            }
            CliError::Message(m) => self.err(&format!(
                "{}: {m}",
                self.colored(anstyle::AnsiColor::Red, "error")
            )),
        }
    }

    /// Asks for "yes" on a terminal; refuses without `--yes` when stdin is not one.
    pub fn confirm(&self, question: &str, auto_approve: bool) -> Result<bool, CliError> {
        if auto_approve {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return super::fail("stdin is not a terminal, so plinth cannot ask for confirmation: pass --yes (or --auto-approve) to go ahead");
        }
        self.out_raw(&format!(
            "{}\n  Only 'yes' will be accepted.\n\n  Enter a value: ",
            self.bold(question)
        ));
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(answer.trim() == "yes")
    }
}

/// Stderr for log lines, masking sensitive values (each event is written whole).
pub struct MaskedStderr {
    secrets: Arc<Mutex<Vec<String>>>,
    /// Live status lines on stdout are erased above the log line and drawn again under it.
    status: Arc<Mutex<StatusLines>>,
}

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let masked = match self.secrets.lock() {
            Ok(s) if !s.is_empty() => mask_values(&text, &s),
            _ => text.into_owned(),
        };
        above_status(&self.status, || {
            std::io::stderr().write_all(masked.as_bytes())
        })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Engine progress as lines, Terraform style: one when a step starts, one every few seconds
/// while it waits, one when it ends.
pub struct LineReporter {
    pub ui: Ui,
}

fn noun(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Create => "Creation",
        StepKind::Update | StepKind::CompleteDeferred => "Modification",
        StepKind::Delete => "Destruction",
        StepKind::Read => "Read",
        StepKind::Adopt => "Adoption",
        StepKind::Forget => "Removal from state",
    }
}

pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else if d.as_millis() >= 1000 {
        format!("{secs}s")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Reporter for LineReporter {
    fn started(&self, name: &str, kind: StepKind) {
        let verb = kind.verb();
        let mut v = verb.chars();
        let verb = v
            .next()
            .map(|c| c.to_uppercase().collect::<String>() + v.as_str())
            .unwrap_or_default();
        self.ui.out(&format!("{}: {verb}…", self.ui.bold(name)));
    }
    fn still_running(&self, name: &str, kind: StepKind, elapsed: Duration, status: Option<&str>) {
        let status = status.map(|s| format!(" — {s}")).unwrap_or_default();
        self.ui.out(&format!(
            "{}: Still {}… [{} elapsed]{status}",
            self.ui.bold(name),
            kind.verb(),
            short_duration(elapsed)
        ));
    }
    fn finished(&self, result: &StepResult, id: Option<&str>) {
        let name = self.ui.bold(&result.name);
        match &result.outcome {
            Outcome::Done => {
                let id = id
                    .filter(|i| !i.is_empty() && result.kind != StepKind::Delete)
                    .map(|i| format!(" [id={i}]"))
                    .unwrap_or_default();
                self.ui.out(&format!(
                    "{name}: {} complete after {}{id}",
                    noun(result.kind),
                    short_duration(result.elapsed)
                ));
            }
            Outcome::Failed(e) => self.ui.err(&format!(
                "{name}: {} failed after {}: {e}",
                noun(result.kind),
                short_duration(result.elapsed)
            )),
            Outcome::Abandoned => self.ui.err(&format!(
                "{name}: stopped waiting for it (interrupted); AWS may still be working on it, the next run picks it up"
            )),
            Outcome::Skipped { .. } | Outcome::NotStarted => {}
        }
    }
    fn deletion_pending(&self, result: &StepResult, _reason: &str) {
        self.ui.out(&format!(
            "{}: Deletion accepted after {}; AWS is still carrying it out (kept in state as pending)",
            self.ui.bold(&result.name),
            short_duration(result.elapsed)
        ));
    }
    fn notice(&self, name: &str, message: &str) {
        self.ui.out(&format!("{}: {message}", self.ui.bold(name)));
    }
}

/// The reporter for a run: a live status line on a terminal (one per student of a roster),
/// plain lines elsewhere (a pipe, CI).
pub fn reporter(ui: &Ui) -> Arc<dyn Reporter> {
    let lines = LineReporter { ui: ui.clone() };
    if !ui.live() {
        return Arc::new(lines);
    }
    ui.begin_status();
    let live = Arc::new(LiveReporter {
        lines,
        started: Instant::now(),
        steps: Mutex::default(),
    });
    // The elapsed times move on between the engine's reports.
    let ticking = Arc::downgrade(&live);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match ticking.upgrade() {
                Some(live) => live.redraw(),
                None => return,
            }
        }
    });
    live
}

/// Engine progress on a terminal: what finished as lines (as [`LineReporter`] prints them),
/// and one status line under them, redrawn as steps start, wait and end: how many are done,
/// in flight and waiting, the time since the run began, and the step waiting longest with
/// what it waits for.
struct LiveReporter {
    lines: LineReporter,
    started: Instant,
    steps: Mutex<Steps>,
}

#[derive(Default)]
struct Steps {
    done: usize,
    failed: usize,
    /// Steps under way: when each started, and what it last said it waits for.
    running: std::collections::BTreeMap<String, (Instant, Option<String>)>,
}

impl LiveReporter {
    fn redraw(&self) {
        let line = status_line(&lock(&self.steps), self.started.elapsed());
        self.lines.ui.set_status(&line);
    }

    fn end_step(&self, name: &str, failed: bool) {
        let mut steps = lock(&self.steps);
        steps.running.remove(name);
        match failed {
            true => steps.failed += 1,
            false => steps.done += 1,
        }
    }
}

/// `12 done · 3 in flight · 2 waiting · 1m4s — slowest: cache, 58s, waiting for …`
fn status_line(steps: &Steps, elapsed: Duration) -> String {
    let waiting = steps.running.values().filter(|(_, s)| s.is_some()).count();
    let mut line = format!(
        "{} done · {} in flight · {waiting} waiting",
        steps.done,
        steps.running.len() - waiting
    );
    if steps.failed > 0 {
        line.push_str(&format!(" · {} failed", steps.failed));
    }
    line.push_str(&format!(" · {}", short_duration(elapsed)));
    let slowest = steps.running.iter().min_by_key(|(_, (at, _))| *at);
    if let Some((name, (at, status))) = slowest {
        line.push_str(&format!(
            " — slowest: {name}, {}",
            short_duration(at.elapsed())
        ));
        if let Some(status) = status {
            line.push_str(&format!(", {status}"));
        }
    }
    line
}

/// A run that ends early (a panic in a student's run) takes its status line with it.
impl Drop for LiveReporter {
    fn drop(&mut self) {
        self.lines.ui.end_status();
    }
}

impl Reporter for LiveReporter {
    fn started(&self, name: &str, _kind: StepKind) {
        lock(&self.steps)
            .running
            .insert(name.to_string(), (Instant::now(), None));
        self.redraw();
    }
    fn still_running(&self, name: &str, _kind: StepKind, _elapsed: Duration, status: Option<&str>) {
        if let Some((_, waits_for)) = lock(&self.steps).running.get_mut(name) {
            *waits_for = status.map(str::to_string);
        }
        self.redraw();
    }
    fn finished(&self, result: &StepResult, id: Option<&str>) {
        self.end_step(&result.name, matches!(result.outcome, Outcome::Failed(_)));
        self.lines.finished(result, id);
        self.redraw();
    }
    fn deletion_pending(&self, result: &StepResult, reason: &str) {
        self.end_step(&result.name, false);
        self.lines.deletion_pending(result, reason);
        self.redraw();
    }
    fn notice(&self, name: &str, message: &str) {
        self.lines.notice(name, message);
    }
}

/// `text` cut to `width` characters on the screen; colour codes (`ESC [ … m`) take none,
/// and the colour is reset after a cut.
fn cut_visible(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut shown, mut styled) = (0, false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            out.push(c);
            styled = true;
            for c in chars.by_ref() {
                out.push(c);
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if shown == width {
            if styled {
                out.push_str("\x1b[0m");
            }
            return out;
        } else {
            out.push(c);
            shown += 1;
        }
    }
    out
}

/// The terminal's columns and rows, read at each redraw (it may have been resized); where
/// it does not say (a terminal of no size), `COLUMNS` and `LINES`, else 100 by 24.
fn screen_size() -> (usize, usize) {
    let known = terminal_size::terminal_size()
        .map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
        .filter(|(w, h)| *w > 0 && *h > 0);
    let from_env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    known.unwrap_or_else(|| (from_env("COLUMNS", DEFAULT_WIDTH), from_env("LINES", 24)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The terminal's width when stdout is one; else what `COLUMNS` says; else 100 (a pipe or
/// CI log is read in a window of some width too).
fn output_width() -> usize {
    let terminal = std::io::stdout()
        .is_terminal()
        .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
        .flatten();
    let columns = || {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
    };
    terminal
        .or_else(columns)
        .filter(|w| *w >= 40)
        .unwrap_or(DEFAULT_WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_is_cut_to_the_screen_not_counting_colour_codes() {
        let bold = "\x1b[1m[ana]\x1b[0m 3 done · 1 in flight";
        assert_eq!(cut_visible(bold, 9), "\x1b[1m[ana]\x1b[0m 3 d\x1b[0m");
        assert_eq!(cut_visible("plain", 10), "plain");
        assert_eq!(cut_visible("plain", 3), "pla");
    }

    #[test]
    fn status_lines_are_erased_line_by_line_and_an_empty_set_writes_nothing() {
        let mut lines = StatusLines::default();
        let mut out = Vec::new();
        lines.redraw(&mut out);
        assert!(out.is_empty());
        lines.rows = vec![("a".into(), "one".into()), ("b".into(), "two".into())];
        lines.redraw(&mut out);
        assert_eq!(String::from_utf8_lossy(&out), "one\ntwo");
        out.clear();
        lines.erase(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("{ERASE_LINE}{ERASE_LINE_ABOVE}")
        );
    }
}
