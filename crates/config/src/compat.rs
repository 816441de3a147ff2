//! Where saphyr-parser (YAML 1.2) and libyaml 0.2.5 (YAML 1.1, nutcracker's parser) disagree on
//! what is valid, this module makes rampart side with libyaml:
//!
//! - a `#` glued to the token before it (`hash: "murmur"#note`) starts a comment for libyaml;
//!   saphyr wants a space, so one is inserted;
//! - a tab after `key:` is separation for libyaml; saphyr refuses it before some values, so it
//!   is read as a space (and put back where it turns out to be inside a quoted or block scalar);
//! - libyaml does not check the indentation of a quoted scalar's continuation lines (which is
//!   dropped from the value anyway); saphyr does, so such lines are indented further;
//! - libyaml refuses tabs that saphyr lets pass: in the indentation of a line (outside quoted
//!   scalars, and beyond the indentation of a plain or block scalar's continuation lines),
//!   and after a `-`, `?` or complex-key `:` indicator. The first such tab is found here;
//! - a line starting with `---` or `...` is a document marker for libyaml wherever it appears
//!   (saphyr ignores a `...` before the first document, for one). The first one is found here.
//!
//! Every edit keeps the line structure; [`Reconciled::inserted`] maps columns back.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use crate::error::Pos;

const GLUED_COMMENT: &str = "comments must be separated from other tokens by whitespace";
const TAB_INDENTATION: &str = "tab cannot be used as indentation";
const QUOTED_INDENTATION: &str = "invalid indentation in quoted scalar";

/// Spaces inserted into a line, at a column of the final text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insertion {
    pub line: usize,
    pub column: usize,
    pub count: usize,
}

/// The text to parse, and what reconciling found.
pub(crate) struct Reconciled {
    pub text: String,
    /// The spaces inserted, sorted by line.
    pub inserted: Vec<Insertion>,
    /// The first tab libyaml would refuse, in the final text's coordinates.
    pub misplaced_tab: Option<Pos>,
    /// The first `---` or `...` line: its position and the marker.
    pub document_marker: Option<(Pos, &'static str)>,
}

/// A scalar as the tab rules need it, in character indices of the text.
struct ScalarSpan {
    start: usize,
    end: usize,
    style: ScalarStyle,
    /// libyaml's `indent` for a plain scalar: the enclosing block collection's column plus 1.
    indent: usize,
    /// Column of the first character (the content indentation of a block scalar).
    column: usize,
}

/// Each edit re-parses the text: at most this many edits, and this many characters parsed in
/// all, before saphyr's error is reported as it is.
const MAX_EDITS: usize = 1000;
const MAX_WORK: usize = 50_000_000;

pub(crate) fn reconcile(text: String) -> Reconciled {
    let document_marker = first_document_marker(&text);
    let mut chars: Vec<char> = text.chars().collect();
    // Tabs read as spaces: after a `:` (put back if they turn out to be scalar content), and in
    // the indentation of a quoted scalar's continuation line.
    let mut value_tabs = separate_values(&mut chars);
    let mut indent_tabs = Vec::new();
    let mut inserted = Vec::new();
    let mut edits = 0;
    let scalars = loop {
        let (scalars, error) = scan(&chars.iter().collect::<String>());
        let within_budget = edits < MAX_EDITS && edits.saturating_mul(chars.len()) < MAX_WORK;
        if !within_budget {
            break scalars;
        }
        let (content, separation): (Vec<usize>, Vec<usize>) =
            value_tabs.iter().partition(|&&tab| {
                scalars
                    .iter()
                    .any(|s| s.start <= tab && tab < s.end && s.style != ScalarStyle::Plain)
            });
        if !content.is_empty() {
            edits += 1;
            for tab in content {
                if let Some(c) = chars.get_mut(tab) {
                    *c = '\t';
                }
            }
            value_tabs = separation;
            continue;
        }
        let Some(error) = error else {
            break scalars;
        };
        edits += 1;
        let marker = *error.marker();
        let at = marker.index();
        match (error.info(), chars.get(at)) {
            (GLUED_COMMENT, Some('#')) => {
                chars.insert(at, ' ');
                for tab in value_tabs.iter_mut().chain(&mut indent_tabs) {
                    if *tab >= at {
                        *tab += 1;
                    }
                }
                inserted.push(Insertion {
                    line: marker.line(),
                    column: marker.col() + 1,
                    count: 1,
                });
            }
            // Inside a quoted scalar the indentation of a continuation line is dropped, tabs
            // and all, and libyaml does not check it; elsewhere the tab rules below refuse it.
            (TAB_INDENTATION, Some('\t')) => {
                if let Some(tab) = chars.get_mut(at) {
                    *tab = ' ';
                }
                indent_tabs.push(at);
            }
            (QUOTED_INDENTATION, Some('"' | '\'')) => {
                let mut tabs: Vec<&mut usize> =
                    value_tabs.iter_mut().chain(&mut indent_tabs).collect();
                match indent_quoted(&chars, at, &mut inserted, &mut tabs) {
                    Some(padded) => chars = padded,
                    None => break scalars,
                }
            }
            _ => break scalars,
        }
    };
    let text = chars.iter().collect();
    for &tab in value_tabs.iter().chain(&indent_tabs) {
        if let Some(c) = chars.get_mut(tab) {
            *c = '\t';
        }
    }
    let misplaced_tab = first_misplaced_tab(&chars, &scalars).map(|index| position(&chars, index));
    inserted.sort_by_key(|insertion| (insertion.line, insertion.column));
    Reconciled {
        text,
        inserted,
        misplaced_tab,
        document_marker,
    }
}

/// Reads as spaces the tabs between a `:` and what follows it on the line, which libyaml skips
/// after a key and saphyr refuses before some values. Returns where they were.
fn separate_values(chars: &mut [char]) -> Vec<usize> {
    let mut tabs = Vec::new();
    let mut after_colon = false;
    for (index, c) in chars.iter_mut().enumerate() {
        match *c {
            ':' => after_colon = true,
            '\t' if after_colon => {
                *c = ' ';
                tabs.push(index);
            }
            ' ' => {}
            _ => after_colon = false,
        }
    }
    tabs
}

/// The first line that libyaml reads as a `---` or `...` document marker.
fn first_document_marker(text: &str) -> Option<(Pos, &'static str)> {
    text.split('\n').enumerate().find_map(|(index, line)| {
        let marker = ["---", "..."].into_iter().find(|marker| {
            line.strip_prefix(marker)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        })?;
        Some((
            Pos {
                line: index + 1,
                column: 1,
            },
            marker,
        ))
    })
}

/// Indents the continuation lines of the quoted scalar opening at `open` deeper than the
/// opening quote (deeper than any block indentation), as YAML 1.2 wants and libyaml does not.
/// Returns the new text, or `None` when no line needed it.
fn indent_quoted(
    chars: &[char],
    open: usize,
    inserted: &mut Vec<Insertion>,
    tabs: &mut [&mut usize],
) -> Option<Vec<char>> {
    let close = quoted_end(chars, open)?;
    let before = chars.get(..open)?;
    let first = before.iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
    let need = open - first + 1;
    let mut line = 1 + before.iter().take(first).filter(|&&c| c == '\n').count();
    // (index of a line start, spaces to add there, line number)
    let mut pads = Vec::new();
    for (i, &c) in chars.iter().enumerate().take(close).skip(first) {
        if c != '\n' {
            continue;
        }
        line += 1;
        let indentation = chars
            .iter()
            .skip(i + 1)
            .take_while(|&&c| is_blank(c))
            .count();
        let blank = matches!(chars.get(i + 1 + indentation), None | Some('\n'));
        if !blank && indentation < need {
            pads.push((i + 1, need - indentation, line));
        }
    }
    if pads.is_empty() {
        return None;
    }
    let mut padded = Vec::with_capacity(chars.len() + pads.len() * need);
    let mut copied = 0;
    let earlier = inserted.len();
    for &(start, missing, line) in &pads {
        padded.extend_from_slice(chars.get(copied..start)?);
        padded.extend(std::iter::repeat_n(' ', missing));
        copied = start;
        for before in inserted
            .iter_mut()
            .take(earlier)
            .filter(|at| at.line == line)
        {
            before.column += missing;
        }
        inserted.push(Insertion {
            line,
            column: 1,
            count: missing,
        });
    }
    padded.extend_from_slice(chars.get(copied..)?);
    let mut shift = Vec::with_capacity(pads.len());
    let mut total = 0;
    for &(start, missing, _) in &pads {
        total += missing;
        shift.push((start, total));
    }
    for tab in tabs.iter_mut() {
        let before = shift.partition_point(|&(start, _)| start <= **tab);
        if let Some(&(_, total)) = before.checked_sub(1).and_then(|i| shift.get(i)) {
            **tab += total;
        }
    }
    Some(padded)
}

/// The index of the quote closing the quoted scalar that opens at `open`.
fn quoted_end(chars: &[char], open: usize) -> Option<usize> {
    let quote = *chars.get(open)?;
    let mut i = open + 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' if quote == '"' => i += 2,
            '\'' if quote == '\'' && chars.get(i + 1) == Some(&'\'') => i += 2,
            c if c == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The 1-based position of a character index.
fn position(chars: &[char], index: usize) -> Pos {
    let before = chars.get(..index).unwrap_or(chars);
    let line_start = before.iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
    Pos {
        line: 1 + before.iter().filter(|&&c| c == '\n').count(),
        column: 1 + index - line_start,
    }
}

/// Parses `text` to its end or first error, collecting every scalar.
fn scan(text: &str) -> (Vec<ScalarSpan>, Option<ScanError>) {
    let mut parser = Parser::new_from_str(text);
    let lines: Vec<Vec<char>> = text
        .split('\n')
        .map(|line| line.chars().collect())
        .collect();
    let mut scalars = Vec::new();
    let mut columns: Vec<usize> = Vec::new();
    loop {
        match parser.next_event() {
            None | Some(Ok((Event::StreamEnd, _))) => return (scalars, None),
            Some(Err(error)) => return (scalars, Some(error)),
            Some(Ok((event, span))) => match event {
                Event::MappingStart(..) => columns.push(span.start.col()),
                Event::SequenceStart(..) => {
                    // libyaml indents a block sequence at its first `-`, which saphyr's span
                    // skips for a sequence at its parent's indentation.
                    let line = lines.get(span.start.line().saturating_sub(1));
                    let before =
                        line.map_or(&[][..], |line| line.get(..span.start.col()).unwrap_or(line));
                    let dash = match line.and_then(|line| line.get(span.start.col())) {
                        Some('-') => Some(span.start.col()),
                        _ => before
                            .iter()
                            .rposition(|&c| !is_blank(c))
                            .filter(|&at| before.get(at) == Some(&'-')),
                    };
                    columns.push(dash.unwrap_or(span.start.col()));
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    columns.pop();
                }
                Event::Scalar(_, style, ..) if !is_empty(span) => scalars.push(ScalarSpan {
                    start: span.start.index(),
                    end: span.end.index(),
                    style,
                    indent: columns.last().map_or(0, |column| column + 1),
                    column: span.start.col(),
                }),
                _ => {}
            },
        }
    }
}

fn is_empty(span: Span) -> bool {
    span.end.index() <= span.start.index()
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The index of the first tab libyaml's scanner would refuse. One pass over the text, with
/// the scalars (which saphyr reports in file order) consumed alongside.
fn first_misplaced_tab(chars: &[char], scalars: &[ScalarSpan]) -> Option<usize> {
    // The next scalar that does not end before the current character.
    let mut next = 0;
    // The plain scalar whose trailing blanks and breaks are being read, and whether a line
    // break was among them.
    let mut trailing: Option<(&ScalarSpan, bool)> = None;
    let mut line = Line::default();
    for (index, &c) in chars.iter().enumerate() {
        while let Some(ended) = scalars.get(next).filter(|scalar| scalar.end <= index) {
            trailing = Some((ended, false)).filter(|(s, _)| s.style == ScalarStyle::Plain);
            next += 1;
        }
        let inside = scalars.get(next).filter(|scalar| scalar.start <= index);
        if c == '\t' && !line.comment && refuses_tab(&line, index - line.start, inside, trailing) {
            return Some(index);
        }
        if inside.is_none() && !is_blank(c) && c != '\n' {
            trailing = None;
        }
        if c == '\n' {
            trailing = trailing.map(|(scalar, _)| (scalar, true));
            line = Line {
                start: index + 1,
                ..Line::default()
            };
            continue;
        }
        if !is_blank(c) {
            if c == '#' && inside.is_none() && line.after_blank {
                line.comment = true;
            }
            line.first_nonblank.get_or_insert(index - line.start);
            line.last_nonblank = Some((index - line.start, c, line.after_blank));
        }
        line.after_blank = is_blank(c);
    }
    None
}

/// What the tab rules need to know about the line read so far.
struct Line {
    start: usize,
    /// Column of the first non-blank character, if any.
    first_nonblank: Option<usize>,
    /// The last non-blank character: its column, itself, and whether a blank preceded it.
    last_nonblank: Option<(usize, char, bool)>,
    /// Whether the previous character was blank (true at the start of a line).
    after_blank: bool,
    /// Whether a comment has started.
    comment: bool,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            start: 0,
            first_nonblank: None,
            last_nonblank: None,
            after_blank: true,
            comment: false,
        }
    }
}

/// Whether libyaml refuses a tab at `column` of `line`, inside or after the given scalars.
fn refuses_tab(
    line: &Line,
    column: usize,
    inside: Option<&ScalarSpan>,
    trailing: Option<(&ScalarSpan, bool)>,
) -> bool {
    let leading = line.first_nonblank.is_none();
    if let Some(scalar) = inside {
        return match scalar.style {
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => false,
            ScalarStyle::Literal | ScalarStyle::Folded => leading && column < scalar.column,
            ScalarStyle::Plain => leading && scalar.start < line.start && column < scalar.indent,
        };
    }
    // Blanks and breaks right after a plain scalar are consumed by its scanner, which refuses
    // a tab only in the indentation, left of the scalar's indent.
    if let Some((scalar, broke)) = trailing {
        return broke && column < scalar.indent;
    }
    if leading {
        return true;
    }
    // Between tokens, tabs are skipped only where a simple key cannot start: not after `-`,
    // `?`, or the `:` of a complex key (a `:` that opens its line).
    match line.last_nonblank {
        Some((_, '-' | '?', after_blank)) => after_blank,
        Some((column, ':', _)) => line.first_nonblank == Some(column),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(text: &str) -> Option<Pos> {
        reconcile(text.to_owned()).misplaced_tab
    }

    #[test]
    fn glued_comments_get_a_space() {
        let reconciled = reconcile("a: \"x\"#one\nb: 'y'#two #three\nc: d#e\n".to_owned());
        assert_eq!(
            reconciled.text,
            "a: \"x\" #one\nb: 'y' #two #three\nc: d#e\n"
        );
        let at = |line, column| Insertion {
            line,
            column,
            count: 1,
        };
        assert_eq!(reconciled.inserted, vec![at(1, 7), at(2, 7)]);
    }

    #[test]
    fn quoted_continuation_lines_are_indented() {
        let reconciled = reconcile("p:\n  a: \"x\n\ty\nz\"\n  b: 'c\n\n d'\n".to_owned());
        assert_eq!(
            reconciled.text,
            "p:\n  a: \"x\n      y\n      z\"\n  b: 'c\n\n      d'\n"
        );
        assert_eq!(reconciled.misplaced_tab, None);
        assert!(scan(&reconciled.text).1.is_none());
        let counts: Vec<(usize, usize, usize)> = reconciled
            .inserted
            .iter()
            .map(|i| (i.line, i.column, i.count))
            .collect();
        assert_eq!(counts, [(3, 1, 5), (4, 1, 6), (7, 1, 5)]);
    }

    #[test]
    fn tab_after_a_colon_inside_a_scalar_is_content() {
        let text = "a: \"b:\tc\"\nd: |\n  e:\tf\ng: h:\ti\n";
        let reconciled = reconcile(text.to_owned());
        assert_eq!(reconciled.text, "a: \"b:\tc\"\nd: |\n  e:\tf\ng: h: i\n");
    }

    #[test]
    fn tab_after_a_simple_key_is_separation() {
        let reconciled = reconcile("a:\tb\nc:\t\"d\"\n".to_owned());
        assert_eq!(reconciled.text, "a: b\nc: \"d\"\n");
        assert_eq!(reconciled.misplaced_tab, None);
    }

    #[test]
    fn document_markers_anywhere() {
        let marker = |text: &str| reconcile(text.to_owned()).document_marker;
        assert_eq!(
            marker("# c\n...\na: b\n"),
            Some((Pos { line: 2, column: 1 }, "..."))
        );
        assert_eq!(
            marker("a: b\n--- \n"),
            Some((Pos { line: 2, column: 1 }, "---"))
        );
        assert_eq!(marker("a: ---\nb: ...x\n----\n"), None);
    }

    #[test]
    fn tabs_libyaml_accepts() {
        for text in [
            "a: b\t\n",
            "a: b\t# c\n",
            "a: \"b\"\t\n",
            "a:\t\n  b: c\n",
            "a: \"b\tc\"\n",
            "a: b\tc\n",
            "a: b # -\tc\n",
            "p:\n  a: b\n   \t# c\n",
            "p:\n  s:\n  - a\n   \t# c\n",
            "p:\n  s:\n  - a\n   \t- b\n",
            "a: |-\t\n  x\n",
        ] {
            assert_eq!(tab(text), None, "{text:?}");
        }
    }

    #[test]
    fn tabs_libyaml_refuses() {
        for (text, line, column) in [
            ("\ta: b\n", 1, 1),
            ("a: b\n\t\n", 2, 1),
            ("a: b\n\t", 2, 1),
            ("a: \"b\"\n  \t# c\n", 2, 3),
            ("a:\n-\tb\n", 2, 2),
            ("a:\n- \tb\n", 2, 3),
            ("? a\n:\tb\n", 2, 2),
            ("p:\n  a: b\n  \t# c\n", 3, 3),
            ("a: |\n  x\n\ty\n", 3, 1),
        ] {
            assert_eq!(tab(text), Some(Pos { line, column }), "{text:?}");
        }
    }
}
