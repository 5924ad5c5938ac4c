//! User-facing diagnostics: each names the file, line and column and says what was expected.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

/// A place in a source file: byte range plus 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
    pub line: usize,
    pub column: usize,
}

impl Span {
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

/// A source file, shared by every diagnostic that points into it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
    /// The folder the file is in: what paths written in it are relative to.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

pub fn display_path(path: &Path) -> String {
    path.display().to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a stack file (or a variable file).
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: Option<SourceFile>,
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &SourceFile, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: Some(file.clone()),
            span,
            message: message.into(),
            help: None,
        }
    }
    /// An error not tied to a file (a `--var` on the command line).
    pub fn plain(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: None,
            span: Span::default(),
            message: message.into(),
            help: None,
        }
    }
    pub fn warning(file: &SourceFile, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, span, message)
        }
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    /// `file:line:column`, or just the file when the position is unknown.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        Some(if self.span.is_known() {
            format!(
                "{}:{}:{}",
                file.display_path(),
                self.span.line,
                self.span.column
            )
        } else {
            file.display_path()
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    // The source is attached by `to_report` as a named source, so snippets are headed by
    // `file:line:column`.
    fn source_code(&self) -> Option<&dyn SourceCode> {
        None
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.file.is_none() || !self.span.is_known() {
            return None;
        }
        let span = LabeledSpan::new_with_span(None, (self.span.offset, self.span.len.max(1)));
        Some(Box::new(std::iter::once(span)))
    }
}

/// Several problems at once: a stack file is checked whole, not one error at a time.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Ok when there are no errors (warnings are kept for the caller to print).
    pub fn into_result<T>(self, value: T) -> Result<(T, Diagnostics), Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok((value, self))
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A miette report for one diagnostic, with the file named so snippets show `file:line:col`.
pub fn to_report(d: &Diagnostic) -> miette::Report {
    let report = miette::Report::new(d.clone());
    match &d.file {
        Some(file) if d.span.is_known() => {
            report.with_source_code(NamedSource::new(file.display_path(), file.text.to_string()))
        }
        _ => report,
    }
}
