//! A roster: one environment per student, listed in a plain text file.
//!
//! ```text
//! # week 2, group A
//! ana    domain=ana.example.com tier=small
//! bruno                                   # a comment after a student
//! carla  title="Carla Dias"
//! ```
//!
//! A line is a student's name, which becomes the environment's workspace (and the stack's
//! `student` variable when it declares one), then that student's variables as `NAME=VALUE`.
//! The whole file is checked before anything runs, every problem with its line and column.

use std::collections::HashMap;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::stack::vars::{self, VarDecl};
use crate::state::workspace_name_problem;

/// The variable a student's name is given to, when the stack declares it.
pub const STUDENT_VAR: &str = "student";

/// A checked roster file.
#[derive(Clone, Debug)]
pub struct Roster {
    pub file: SourceFile,
    pub students: Vec<Student>,
}

/// One line of the roster.
#[derive(Clone, Debug)]
pub struct Student {
    /// The workspace this student's environment lives in.
    pub name: String,
    pub span: Span,
    pub vars: Vec<LineVar>,
    /// The student's own AWS account (`account=` or `role_arn=`); `None`: the account of
    /// the credentials plinth runs with.
    pub account: Option<AccountAccess>,
}

/// The role an instructor goes through to reach the account of a student.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountTarget {
    /// `account=ID`: the role named `--role-name` in that account.
    Id(String),
    /// `role_arn=ARN`: this role.
    Role(String),
}

/// `account=`, `role_arn=` and `external_id=` on a student's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountAccess {
    pub target: AccountTarget,
    /// What the role's trust policy asks for in `sts:ExternalId`, if anything.
    pub external_id: Option<String>,
}

/// The role AWS Organizations creates in every account it makes (and Control Tower's
/// accounts carry), assumed for `account=ID` unless `--role-name` says otherwise.
pub const DEFAULT_ROLE_NAME: &str = "OrganizationAccountAccessRole";

/// The words of a roster line that set the student's account, not a variable.
pub const ACCOUNT_KEYS: [&str; 3] = ["account", "role_arn", "external_id"];

impl AccountAccess {
    /// The role to assume: `role_arn=` as given, or `role_name` in `account=`'s account.
    pub fn role_arn(&self, role_name: &str) -> String {
        match &self.target {
            AccountTarget::Id(id) => format!("arn:aws:iam::{id}:role/{role_name}"),
            AccountTarget::Role(arn) => arn.clone(),
        }
    }

    /// The twelve digits of the student's account.
    pub fn account_id(&self) -> &str {
        match &self.target {
            AccountTarget::Id(id) => id,
            // Checked when the roster was read: `arn:PARTITION:iam::ACCOUNT:role/NAME`.
            AccountTarget::Role(arn) => arn.split(':').nth(4).unwrap_or_default(),
        }
    }
}

/// Why `name` cannot be an IAM role name (`--role-name`), if it cannot.
pub fn role_name_problem(name: &str) -> Option<String> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    (!valid).then(|| {
        format!(
            "`{name}` is not an IAM role name: expected 1 to 64 letters, digits and + = , . @ _ -"
        )
    })
}

fn account_id_problem(id: &str) -> Option<String> {
    let valid = id.len() == 12 && id.chars().all(|c| c.is_ascii_digit());
    (!valid).then(|| format!("`account={id}`: expected an AWS account id, twelve digits"))
}

fn role_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && account_id_problem(parts[4]).is_none()
        && parts[5]
            .strip_prefix("role/")
            .and_then(|path| path.rsplit('/').next())
            .is_some_and(|name| role_name_problem(name).is_none());
    (!valid).then(|| {
        format!("`role_arn={arn}`: expected a role's ARN, arn:aws:iam::111122223333:role/NAME")
    })
}

fn external_id_problem(id: &str) -> Option<String> {
    let valid = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
    (!valid).then(|| {
        "`external_id=`: expected 2 to 1224 letters, digits and + = , . @ : / _ -".to_string()
    })
}

/// `NAME=VALUE` on a student's line.
#[derive(Clone, Debug)]
pub struct LineVar {
    pub name: String,
    pub value: String,
    /// The whole `NAME=VALUE` token, for errors about the value.
    pub span: Span,
}

impl Student {
    /// This student's `--var`s, in the order they apply: the name as `student` (when the
    /// stack declares it), then the line's own variables.
    pub fn var_pairs(&self, stack_declares_student: bool) -> Vec<String> {
        let name = stack_declares_student.then(|| format!("{STUDENT_VAR}={}", self.name));
        name.into_iter()
            .chain(self.vars.iter().map(|v| format!("{}={}", v.name, v.value)))
            .collect()
    }
}

impl Roster {
    /// Checks a student's line variables against what the stack declares, so an unknown
    /// name or a value of the wrong type is reported at its place in the roster.
    pub fn check_vars(&self, student: &Student, decls: &[VarDecl]) -> Result<(), Diagnostics> {
        let mut diags = Diagnostics::default();
        for var in &student.vars {
            let Some(decl) = decls.iter().find(|d| d.name == var.name) else {
                diags.push(vars::unknown_var(
                    Some((&self.file, var.span)),
                    &var.name,
                    decls,
                ));
                continue;
            };
            if let Err(expected) = vars::convert(&var.value, decl.var_type) {
                diags.push(Diagnostic::error(
                    &self.file,
                    var.span,
                    format!("`{}` must be {expected}, found `{}`", var.name, var.value),
                ));
            }
        }
        diags.into_result(()).map(|_| ())
    }
}

/// One of N shares of a roster (`--shard I/N`, I from 1): a class split across machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}`: expected I/N with 1 ≤ I ≤ N, e.g. 2/3");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether `student` is this shard's. By a hash of the name, not its line: a student
    /// stays with the same runner when others join or leave the roster.
    pub fn takes(&self, student: &str) -> bool {
        // FNV-1a: stable across runs, machines and Rust versions (unlike `DefaultHasher`).
        let hash = student
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// Reads and checks a roster file.
pub fn read(path: &Path) -> Result<Roster, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::plain(format!(
            "cannot read roster file {}: {e}",
            path.display()
        ))])
    })?;
    parse(SourceFile::new(path, text))
}

/// Checks roster text; every problem is reported, not only the first.
pub fn parse(file: SourceFile) -> Result<Roster, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut students: Vec<Student> = Vec::new();
    // Lowercased name → (name, line): two names differing only in case would share a state
    // folder on case-insensitive file systems.
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    let mut offset = 0;
    for (index, line) in file.text.split_inclusive('\n').enumerate() {
        let at = LineAt {
            file: &file,
            offset,
            line: index + 1,
            text: line.trim_end_matches(['\n', '\r']),
        };
        offset += line.len();
        let Some(student) = at.student(&mut diags) else {
            continue;
        };
        match seen.get(&student.name.to_lowercase()) {
            Some((first, line)) => diags.push(duplicate(&file, &student, first, *line)),
            None => {
                seen.insert(
                    student.name.to_lowercase(),
                    (student.name.clone(), student.span.line),
                );
                students.push(student);
            }
        }
    }
    if students.is_empty() && !diags.has_errors() {
        diags.push(Diagnostic::error(
            &file,
            Span::default(),
            "the roster lists no students: expected one name per line, e.g. `ana domain=ana.example.com`",
        ));
    }
    diags.into_result(Roster { file, students }).map(|(r, _)| r)
}

fn duplicate(file: &SourceFile, student: &Student, first: &str, line: usize) -> Diagnostic {
    let message = if first == student.name {
        format!("student `{first}` is listed twice (first on line {line})")
    } else {
        format!(
            "student `{}` differs from `{first}` (line {line}) only in case: their state folders would be one on a case-insensitive file system",
            student.name
        )
    };
    Diagnostic::error(file, student.span, message)
        .with_help("each student gets one environment: keep one of the lines")
}

/// One line of the file and where it starts.
struct LineAt<'a> {
    file: &'a SourceFile,
    offset: usize,
    line: usize,
    text: &'a str,
}

/// A word of a line: its text with quotes removed, and where it was.
struct Token {
    text: String,
    span: Span,
}

impl LineAt<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span {
            offset: self.offset + start,
            len: end - start,
            line: self.line,
            column: self.text[..start].chars().count() + 1,
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.file, span, message)
    }

    /// The student a line names, or `None` for a blank or comment line or one with errors.
    fn student(&self, diags: &mut Diagnostics) -> Option<Student> {
        let tokens = self.tokens(diags)?;
        let (first, rest) = tokens.split_first()?;
        let mut ok = self.check_name(first, diags);
        let mut vars: Vec<LineVar> = Vec::new();
        let mut settings: Vec<LineVar> = Vec::new();
        for token in rest {
            let earlier = [vars.as_slice(), settings.as_slice()].concat();
            match self.line_var(token, &earlier) {
                Ok(var) if ACCOUNT_KEYS.contains(&var.name.as_str()) => settings.push(var),
                Ok(var) => vars.push(var),
                Err(d) => {
                    diags.push(*d);
                    ok = false;
                }
            }
        }
        let account = match self.account(first, &settings) {
            Ok(account) => account,
            Err(d) => {
                diags.push(*d);
                ok = false;
                None
            }
        };
        ok.then(|| Student {
            name: first.text.clone(),
            span: first.span,
            vars,
            account,
        })
    }

    /// The account a line's `account=`, `role_arn=` and `external_id=` name, checked.
    fn account(
        &self,
        name: &Token,
        settings: &[LineVar],
    ) -> Result<Option<AccountAccess>, Box<Diagnostic>> {
        let get = |key: &str| settings.iter().find(|v| v.name == key);
        let fail = |at: &LineVar, message: String| Err(Box::new(self.error(at.span, message)));
        let target = match (get("account"), get("role_arn")) {
            (Some(_), Some(arn)) => {
                return fail(
                    arn,
                    "give account= or role_arn=, not both: role_arn= names the account too"
                        .into(),
                )
            }
            (Some(id), None) => match account_id_problem(&id.value) {
                Some(problem) => return fail(id, problem),
                None => AccountTarget::Id(id.value.clone()),
            },
            (None, Some(arn)) => match role_arn_problem(&arn.value) {
                Some(problem) => return fail(arn, problem),
                None => AccountTarget::Role(arn.value.clone()),
            },
            (None, None) => {
                return match get("external_id") {
                    Some(id) => fail(
                        id,
                        format!(
                            "external_id= goes with account= or role_arn=: `{}` has no account of their own",
                            name.text
                        ),
                    ),
                    None => Ok(None),
                }
            }
        };
        let external_id = match get("external_id") {
            Some(id) => match external_id_problem(&id.value) {
                Some(problem) => return fail(id, problem),
                None => Some(id.value.clone()),
            },
            None => None,
        };
        Ok(Some(AccountAccess {
            target,
            external_id,
        }))
    }

    fn check_name(&self, token: &Token, diags: &mut Diagnostics) -> bool {
        let problem = if token.text.contains('=') {
            Some(format!(
                "expected the student's name first, found `{}`",
                token.text
            ))
        } else {
            workspace_name_problem(&token.text).map(|p| {
                format!("{p} — a student's name becomes the workspace of their environment")
            })
        };
        match problem {
            Some(message) => {
                diags.push(self.error(token.span, message));
                false
            }
            None => true,
        }
    }

    fn line_var(&self, token: &Token, earlier: &[LineVar]) -> Result<LineVar, Box<Diagnostic>> {
        let Some((name, value)) = token.text.split_once('=') else {
            return Err(Box::new(
                self.error(
                    token.span,
                    format!(
                        "expected NAME=VALUE after the student's name, found `{}`",
                        token.text
                    ),
                )
                .with_help("a value with spaces goes in double quotes: title=\"Ana Silva\""),
            ));
        };
        let problem = if !vars::is_var_name(name) {
            Some(format!("`{name}` is not a valid variable name: expected letters, digits and `_`, starting with a letter"))
        } else if name == STUDENT_VAR {
            Some(format!(
                "`{STUDENT_VAR}` is the name at the start of the line; it cannot be set again"
            ))
        } else if earlier.iter().any(|v| v.name == name) {
            Some(format!("`{name}` is set twice on this line"))
        } else {
            None
        };
        match problem {
            Some(message) => Err(Box::new(self.error(token.span, message))),
            None => Ok(LineVar {
                name: name.to_string(),
                value: value.to_string(),
                span: token.span,
            }),
        }
    }

    /// Splits the line at whitespace up to a `#` comment; double quotes keep spaces in a
    /// word (`title="Ana Silva"`) and are removed.
    fn tokens(&self, diags: &mut Diagnostics) -> Option<Vec<Token>> {
        let mut tokens = Vec::new();
        let mut chars = self.text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            if c == '#' {
                break;
            }
            let mut text = String::new();
            let mut open_quote: Option<usize> = None;
            let mut end = self.text.len();
            while let Some(&(i, c)) = chars.peek() {
                if c.is_whitespace() && open_quote.is_none() {
                    end = i;
                    break;
                }
                chars.next();
                match (c, open_quote) {
                    ('"', None) => open_quote = Some(i),
                    ('"', Some(_)) => open_quote = None,
                    _ => text.push(c),
                }
            }
            if let Some(q) = open_quote {
                diags.push(self.error(self.span(q, q + 1), "this quote is never closed"));
                return None;
            }
            tokens.push(Token {
                text,
                span: self.span(start, end),
            });
        }
        Some(tokens)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn each_student_is_in_exactly_one_shard_and_stays_there() {
        let names: Vec<String> = (0..200).map(|i| format!("student-{i}")).collect();
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, count: 3 }).collect();
        for name in &names {
            assert_eq!(shards.iter().filter(|s| s.takes(name)).count(), 1, "{name}");
        }
        let sizes: Vec<usize> = shards
            .iter()
            .map(|s| names.iter().filter(|n| s.takes(n)).count())
            .collect();
        assert!(sizes.iter().all(|n| (40..=95).contains(n)), "{sizes:?}");
        // A name's shard depends on the name alone, in any case.
        assert_eq!(shards[0].takes("Ana"), shards[0].takes("ana"));
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "2", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    use super::*;

    fn roster(text: &str) -> Result<Roster, Diagnostics> {
        parse(SourceFile::new("students.txt", text.to_string()))
    }

    fn errors(text: &str) -> Vec<String> {
        match roster(text) {
            Ok(r) => panic!("expected errors, got {:?}", r.students),
            Err(d) => d.errors().map(|d| d.to_string()).collect(),
        }
    }

    fn decl(name: &str, var_type: vars::VarType) -> VarDecl {
        VarDecl {
            name: name.into(),
            span: Span::default(),
            default: None,
            description: None,
            var_type,
            sensitive: false,
        }
    }

    #[test]
    fn names_and_variables_are_read_and_comments_and_blank_lines_skipped() {
        let r = roster(
            "# week 2\n\nana  domain=ana.example.com tier=small\n  bruno   # late\ncarla title=\"Carla Dias\" note=a#b\r\n",
        )
        .expect("valid roster");
        let names: Vec<&str> = r.students.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ana", "bruno", "carla"]);
        assert_eq!(
            r.students[0].var_pairs(true),
            ["student=ana", "domain=ana.example.com", "tier=small"]
        );
        assert_eq!(r.students[1].var_pairs(false), Vec::<String>::new());
        assert_eq!(
            r.students[2].var_pairs(false),
            ["title=Carla Dias", "note=a#b"]
        );
        assert_eq!((r.students[1].span.line, r.students[1].span.column), (4, 3));
        let tier = &r.students[0].vars[1];
        assert_eq!((tier.span.line, tier.span.column), (3, 29));
        assert_eq!(
            &r.file.text[tier.span.offset..][..tier.span.len],
            "tier=small"
        );
    }

    #[test]
    fn a_bad_name_or_a_duplicate_names_its_line_and_column() {
        assert_eq!(
            errors("ana\n  bad.name x=1\nana\nAna\n"),
            [
                "students.txt:2:3: `bad.name`: expected letters, digits, `-` and `_` (at most 64) — a student's name becomes the workspace of their environment",
                "students.txt:3:1: student `ana` is listed twice (first on line 1)",
                "students.txt:4:1: student `Ana` differs from `ana` (line 1) only in case: their state folders would be one on a case-insensitive file system",
            ]
        );
    }

    #[test]
    fn malformed_variables_are_errors_at_their_place() {
        assert_eq!(
            errors("ana tier\nbo 1x=2 student=bo\ncy a=1 a=2\ndee x=\"open\n"),
            [
                "students.txt:1:5: expected NAME=VALUE after the student's name, found `tier`",
                "students.txt:2:4: `1x` is not a valid variable name: expected letters, digits and `_`, starting with a letter",
                "students.txt:2:9: `student` is the name at the start of the line; it cannot be set again",
                "students.txt:3:8: `a` is set twice on this line",
                "students.txt:4:7: this quote is never closed",
            ]
        );
        assert_eq!(
            errors("x=1\n"),
            ["students.txt:1:1: expected the student's name first, found `x=1`"]
        );
    }

    #[test]
    fn a_line_names_the_students_account_apart_from_their_variables() {
        let r = roster(
            "ana account=111122223333 tier=small\nbo role_arn=arn:aws:iam::444455556666:role/labs/LabAdmin external_id=course-42\ncy\n",
        )
        .expect("valid roster");
        let ana = r.students[0].account.as_ref().expect("ana's account");
        assert_eq!(
            ana.role_arn(DEFAULT_ROLE_NAME),
            "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
        );
        assert_eq!(
            ana.role_arn("Teacher"),
            "arn:aws:iam::111122223333:role/Teacher"
        );
        assert_eq!(ana.account_id(), "111122223333");
        assert_eq!(r.students[0].var_pairs(false), ["tier=small"]);
        let bo = r.students[1].account.as_ref().expect("bo's account");
        assert_eq!(
            bo.role_arn(DEFAULT_ROLE_NAME),
            "arn:aws:iam::444455556666:role/labs/LabAdmin"
        );
        assert_eq!(bo.account_id(), "444455556666");
        assert_eq!(bo.external_id.as_deref(), Some("course-42"));
        assert!(r.students[1].var_pairs(false).is_empty());
        assert_eq!(r.students[2].account, None);
    }

    #[test]
    fn a_bad_account_is_an_error_at_its_place() {
        assert_eq!(
            errors(concat!(
                "ana account=1234\n",
                "bo role_arn=arn:aws:iam::111122223333:user/bo\n",
                "cy account=111122223333 role_arn=arn:aws:iam::111122223333:role/R\n",
                "dee external_id=xyz\n",
                "eve account=111122223333 account=111122223334\n",
                "fay account=111122223333 external_id=x\n",
            )),
            [
                "students.txt:1:5: `account=1234`: expected an AWS account id, twelve digits",
                "students.txt:2:4: `role_arn=arn:aws:iam::111122223333:user/bo`: expected a role's ARN, arn:aws:iam::111122223333:role/NAME",
                "students.txt:3:25: give account= or role_arn=, not both: role_arn= names the account too",
                "students.txt:4:5: external_id= goes with account= or role_arn=: `dee` has no account of their own",
                "students.txt:5:26: `account` is set twice on this line",
                "students.txt:6:26: `external_id=`: expected 2 to 1224 letters, digits and + = , . @ : / _ -",
            ]
        );
        assert!(role_name_problem("OrganizationAccountAccessRole").is_none());
        assert!(role_name_problem("a/b").is_some());
    }

    #[test]
    fn an_empty_roster_is_an_error() {
        let e = errors("# nobody yet\n\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("lists no students"), "{e:?}");
    }

    #[test]
    fn line_variables_are_checked_against_the_stack_with_positions() {
        let r = roster("ana read_capacity=5\neve read_capacity=lots\nzed red_capacity=5\n")
            .expect("valid roster");
        let decls = [
            decl("student", vars::VarType::String),
            decl("read_capacity", vars::VarType::Number),
        ];
        assert!(r.check_vars(&r.students[0], &decls).is_ok());
        let eve = r
            .check_vars(&r.students[1], &decls)
            .expect_err("not a number");
        assert_eq!(
            eve.to_string(),
            "students.txt:2:5: `read_capacity` must be a number, found `lots`"
        );
        let zed = r.check_vars(&r.students[2], &decls).expect_err("unknown");
        let d = &zed.0[0];
        assert_eq!(
            d.to_string(),
            "students.txt:3:5: unknown variable `red_capacity`: the stack declares student, read_capacity"
        );
        assert_eq!(d.help.as_deref(), Some("did you mean `read_capacity`?"));
    }
}
