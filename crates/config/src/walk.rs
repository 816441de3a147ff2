//! The YAML event walk: one pass over saphyr-parser's events that enforces what nutcracker
//! enforces before reading any directive, and hands each `directive: value` to the directive
//! table as it goes, so the first problem in the file is the one reported.
//!
//! nutcracker's YAML rules, in its own terms:
//! - tokens: exactly one document, with no `---`/`...` markers and no `%` directives; no flow
//!   collections, anchors, aliases or tags;
//! - structure: a mapping of pool names (depth 1) to mappings of scalar `key: value` pairs
//!   (depth 2), plus exactly one block list per pool, whose entries are scalars;
//! - scalars: none may be empty. (rampart also refuses a NUL character in one, whose reading
//!   by nutcracker is undefined.)
//!
//! The state below (`depth`, `count`, the pool's one list) mirrors nutcracker's structure
//! validator, so the same files pass. On top of it, a directive left unindented between
//! indented ones is reported at that directive, before the YAML error it often causes later.

use std::collections::VecDeque;

use saphyr_parser::{Event, Parser, ScanError, Span, StrInput};

use crate::directives::{self, Directive, PoolBuilder, Shape, Value};
use crate::error::{ConfigErrorKind, Fault, Pos};
use crate::source::Source;
use crate::validate::{self, Checked};

/// Walks the whole stream and returns every pool, each checked on its own.
pub(crate) fn pools(source: &Source) -> Result<Vec<Checked>, Fault> {
    let mut walker = Walker {
        source,
        events: Lookahead {
            parser: Parser::new_from_str(&source.text),
            ahead: VecDeque::new(),
        },
        depth: 0,
        count: [0; 3],
        list: None,
        pool_list: None,
        key: None,
        name: None,
        pool: None,
        previous_pool: None,
        documents: 0,
        checked: Vec::new(),
    };
    walker.run()?;
    Ok(walker.checked)
}

/// Events with a few of lookahead (saphyr's own `peek` sees only one).
struct Lookahead<'s> {
    parser: Parser<'s, StrInput<'s>>,
    ahead: VecDeque<Result<(Event<'s>, Span), ScanError>>,
}

impl<'s> Lookahead<'s> {
    fn next(&mut self) -> Result<(Event<'s>, Span), ScanError> {
        match self.ahead.pop_front() {
            Some(event) => event,
            None => self.pull(),
        }
    }

    /// The `n`th event after the current one (0 is the next), unless the YAML breaks first.
    fn peek(&mut self, n: usize) -> Option<&(Event<'s>, Span)> {
        self.peek_result(n).and_then(|event| event.as_ref().ok())
    }

    /// The `n`th event after the current one, or the error that comes before it.
    fn peek_result(&mut self, n: usize) -> Option<&Result<(Event<'s>, Span), ScanError>> {
        while self.ahead.len() <= n && !matches!(self.ahead.back(), Some(Err(_))) {
            let event = self.pull();
            self.ahead.push_back(event);
        }
        self.ahead.get(n)
    }

    fn pull(&mut self) -> Result<(Event<'s>, Span), ScanError> {
        self.parser
            .next_event()
            .unwrap_or_else(|| Ok((Event::StreamEnd, Span::default())))
    }
}

/// The block list being read, and the directive its entries belong to.
struct List {
    directive: &'static Directive,
}

struct Walker<'s> {
    source: &'s Source,
    events: Lookahead<'s>,
    /// nutcracker's depth: 0 outside the root mapping, 1 in it, 2 in a pool's mapping.
    depth: usize,
    /// nutcracker's count of scalars seen at each depth: at depth 1 whether a pool name is
    /// waiting for its mapping; at depth 2 whether the next scalar is a key (0 or 2) or a value.
    count: [u8; 3],
    /// Inside a block list now.
    list: Option<List>,
    /// The pool's one nutcracker list so far: its directive and line.
    pool_list: Option<(&'static str, usize)>,
    /// The directive whose value comes next.
    key: Option<(&'static Directive, Pos)>,
    /// A depth-1 scalar waiting for its mapping: a pool name, or a misplaced directive.
    name: Option<(String, Pos)>,
    pool: Option<PoolBuilder>,
    previous_pool: Option<String>,
    documents: usize,
    checked: Vec<Checked>,
}

fn yaml_fault(source: &Source, error: &ScanError) -> Fault {
    let message = error.info().to_owned();
    let hint = if message.contains("mapping values are not allowed")
        || message.contains("did not find expected key")
    {
        " (check the indentation of this line and of the lines above it)"
    } else if message.contains("quoted scalar") {
        " (is a quote left open?)"
    } else {
        ""
    };
    Fault::at(
        source.pos(*error.marker()),
        ConfigErrorKind::Yaml { message, hint },
    )
}

/// How a value is described in "found ..." messages.
fn describe(value: &str) -> String {
    if value.is_empty() {
        "an empty value".to_owned()
    } else {
        format!("the plain value {value:?}")
    }
}

impl Walker<'_> {
    fn run(&mut self) -> Result<(), Fault> {
        loop {
            let (event, span) = self
                .events
                .next()
                .map_err(|error| yaml_fault(self.source, &error))?;
            let at = self.source.pos(span.start);
            match event {
                Event::StreamStart | Event::Nothing => {}
                Event::StreamEnd => {
                    return match self.documents {
                        0 => Err(Fault::at(Pos::START, ConfigErrorKind::NoDocument)),
                        _ => Ok(()),
                    };
                }
                Event::DocumentStart(explicit) => {
                    if explicit || self.documents > 0 {
                        return Err(self.document_marker(at));
                    }
                    self.documents += 1;
                }
                Event::DocumentEnd => {
                    if span.end.index() > span.start.index() {
                        return Err(
                            self.fault(at, ConfigErrorKind::DocumentMarker { marker: "..." })
                        );
                    }
                }
                Event::Alias(_) => {
                    let text = self.source.token_at(span.start);
                    return Err(self.fault(at, ConfigErrorKind::Alias { text }));
                }
                Event::Scalar(value, _, anchor, tag) => {
                    self.node(span, anchor, tag.is_some())?;
                    if span.end.line() > span.start.line() {
                        self.continued(span.start.line())?;
                    }
                    self.scalar(&value, at)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.node(span, anchor, tag.is_some())?;
                    if self.is_flow(span, '[') {
                        return Err(self.fault(at, ConfigErrorKind::FlowSequence));
                    }
                    self.sequence_start(at)?;
                }
                Event::SequenceEnd => {
                    self.list = None;
                    self.count[2] = 0;
                }
                Event::MappingStart(anchor, tag) => {
                    self.node(span, anchor, tag.is_some())?;
                    if self.is_flow(span, '{') {
                        return Err(self.fault(at, ConfigErrorKind::FlowMapping));
                    }
                    self.mapping_start(at)?;
                }
                Event::MappingEnd => self.mapping_end()?,
            }
        }
    }

    /// A fault at `at`, naming the directive being read there, if any.
    fn fault(&self, at: Pos, kind: ConfigErrorKind) -> Fault {
        let directive = match (&self.list, &self.key) {
            (Some(list), _) => Some(list.directive.name),
            (None, Some((directive, _))) => Some(directive.name),
            (None, None) => None,
        };
        match directive {
            Some(name) => Fault::directive(at, name, kind),
            None => Fault::at(at, kind),
        }
    }

    /// `---`, or the `%YAML` / `%TAG` directive that requires it.
    fn document_marker(&self, at: Pos) -> Fault {
        match self.source.directive_before(at.line) {
            Some((directive_at, text)) => {
                Fault::at(directive_at, ConfigErrorKind::YamlDirective { text })
            }
            None => Fault::at(at, ConfigErrorKind::DocumentMarker { marker: "---" }),
        }
    }

    /// Anchors and tags are refused on every node.
    fn node(&self, span: Span, anchor: usize, tagged: bool) -> Result<(), Fault> {
        let at = self.source.pos(span.start);
        if anchor != 0 {
            let text = self.source.token_at(span.start);
            return Err(self.fault(at, ConfigErrorKind::Anchor { text }));
        }
        if tagged {
            let text = self.source.token_at(span.start);
            return Err(self.fault(at, ConfigErrorKind::Tag { text }));
        }
        Ok(())
    }

    /// A flow collection's start event spans its opening bracket; a block one spans nothing.
    fn is_flow(&self, span: Span, open: char) -> bool {
        span.end.index() > span.start.index() && self.source.token_at(span.start).starts_with(open)
    }

    /// A value spread over several lines and followed by YAML's "mapping values are not
    /// allowed": a directive indented deeper than the one before it, read as its continuation.
    fn continued(&mut self, line: usize) -> Result<(), Fault> {
        let Some(Err(error)) = self.events.peek_result(0) else {
            return Ok(());
        };
        if !error.info().contains("mapping values are not allowed") || self.depth < 2 {
            return Ok(());
        }
        let directive = match (&self.list, &self.key) {
            (Some(list), _) => list.directive.name,
            (None, Some((directive, _))) => directive.name,
            (None, None) => return Ok(()),
        };
        Err(Fault::directive(
            self.source.first_nonblank(line + 1),
            directive,
            ConfigErrorKind::ContinuedValue {
                directive: directive.to_owned(),
                line,
            },
        ))
    }

    fn scalar(&mut self, value: &str, at: Pos) -> Result<(), Fault> {
        if value.contains('\0') && self.depth > 0 {
            return Err(self.fault(at, ConfigErrorKind::NulCharacter));
        }
        match self.depth {
            0 => Err(Fault::at(
                at,
                ConfigErrorKind::RootNotMapping {
                    found: describe(value),
                },
            )),
            1 if self.count[1] != 0 => {
                Err(self.misplaced_pool_value(describe(value), value.is_empty()))
            }
            1 => {
                self.count[1] = 1;
                if value.is_empty() {
                    return Err(Fault::at(at, ConfigErrorKind::EmptyPoolName));
                }
                self.name = Some((value.to_owned(), at));
                Ok(())
            }
            _ => {
                if let Some(list) = &self.list {
                    let directive = list.directive;
                    return self.apply(directive, value, at);
                }
                if self.count[2] == 1 {
                    self.count[2] = 2;
                    let Some((directive, _)) = self.key else {
                        return Ok(());
                    };
                    if directive.shape == Shape::RampartList {
                        return Err(Fault::directive(
                            at,
                            directive.name,
                            ConfigErrorKind::NotAList {
                                directive: directive.name.to_owned(),
                                expected: directive.expected,
                            },
                        ));
                    }
                    let applied = self.apply(directive, value, at);
                    self.key = None;
                    return applied;
                }
                self.count[2] = 1;
                if value.is_empty() {
                    return Err(Fault::at(at, ConfigErrorKind::EmptyDirectiveName));
                }
                match directives::lookup(value) {
                    Some(directive) => {
                        self.key = Some((directive, at));
                        Ok(())
                    }
                    None => Err(Fault::directive(
                        at,
                        value,
                        ConfigErrorKind::UnknownDirective {
                            directive: value.to_owned(),
                            hint: directives::unknown_hint(value),
                        },
                    )),
                }
            }
        }
    }

    /// Reads one value of `directive` into the current pool.
    fn apply(&mut self, directive: &'static Directive, value: &str, at: Pos) -> Result<(), Fault> {
        if value.is_empty() {
            return Err(Fault::directive(
                at,
                directive.name,
                ConfigErrorKind::EmptyValue {
                    directive: directive.name.to_owned(),
                    expected: directive.expected,
                },
            ));
        }
        match &mut self.pool {
            Some(pool) => directive.apply(
                pool,
                Value {
                    text: value,
                    pos: at,
                },
            ),
            None => Ok(()),
        }
    }

    fn mapping_start(&mut self, at: Pos) -> Result<(), Fault> {
        match self.depth {
            0 => {
                self.depth = 1;
                Ok(())
            }
            1 => {
                let Some((name, name_at)) = self.name.take().filter(|_| self.count[1] == 1) else {
                    return Err(Fault::at(
                        at,
                        ConfigErrorKind::ComplexKey { what: "mapping" },
                    ));
                };
                self.pool = Some(PoolBuilder::new(name, name_at));
                self.depth = 2;
                Ok(())
            }
            _ => Err(match (&self.list, self.key) {
                (Some(list), _) => Fault::directive(
                    at,
                    list.directive.name,
                    ConfigErrorKind::NestedInList {
                        directive: list.directive.name.to_owned(),
                        what: "mapping",
                    },
                ),
                (None, Some((directive, _))) if self.count[2] == 1 => Fault::directive(
                    at,
                    directive.name,
                    ConfigErrorKind::NestedMapping {
                        directive: directive.name.to_owned(),
                    },
                ),
                _ => Fault::at(at, ConfigErrorKind::ComplexKey { what: "mapping" }),
            }),
        }
    }

    fn mapping_end(&mut self) -> Result<(), Fault> {
        match self.depth {
            2 => {
                let pool = self.pool.take();
                let pool_name = pool.as_ref().map(|pool| pool.name.clone());
                if let Some(fault) = self.outdented_ahead(pool_name.clone()) {
                    return Err(fault);
                }
                if self.pool_list.take().is_none()
                    && let Some(pool) = &pool
                {
                    return Err(Fault::at(
                        pool.pos,
                        ConfigErrorKind::MissingList {
                            pool: pool.name.clone(),
                        },
                    ));
                }
                if let Some(pool) = pool {
                    self.checked.push(validate::pool(pool)?);
                }
                self.previous_pool = pool_name;
                self.key = None;
                self.depth = 1;
                self.count[1] = 0;
            }
            _ => {
                self.depth = 0;
                self.count[0] = 0;
            }
        }
        Ok(())
    }

    fn sequence_start(&mut self, at: Pos) -> Result<(), Fault> {
        if let Some(list) = &self.list {
            return Err(Fault::directive(
                at,
                list.directive.name,
                ConfigErrorKind::NestedInList {
                    directive: list.directive.name.to_owned(),
                    what: "list",
                },
            ));
        }
        match self.depth {
            0 => Err(Fault::at(
                at,
                ConfigErrorKind::RootNotMapping {
                    found: "a list".to_owned(),
                },
            )),
            1 if self.count[1] == 1 => Err(self.misplaced_pool_value("a list".to_owned(), false)),
            1 => Err(Fault::at(at, ConfigErrorKind::ComplexKey { what: "list" })),
            _ => {
                let Some((directive, key_at)) = self.key.filter(|_| self.count[2] == 1) else {
                    return Err(Fault::at(at, ConfigErrorKind::ComplexKey { what: "list" }));
                };
                let Some(pool) = &mut self.pool else {
                    return Ok(());
                };
                match directive.shape {
                    Shape::RampartList => pool.begin_rampart_list(directive, key_at)?,
                    Shape::Nutcracker => {
                        if let Some((first, first_line)) = self.pool_list {
                            return Err(Fault::directive(
                                key_at,
                                directive.name,
                                ConfigErrorKind::SecondList {
                                    directive: directive.name.to_owned(),
                                    first,
                                    first_line,
                                },
                            ));
                        }
                        self.pool_list = Some((directive.name, key_at.line));
                    }
                }
                self.key = None;
                self.list = Some(List { directive });
                Ok(())
            }
        }
    }

    /// A pool name followed by a scalar or a list instead of a mapping of directives. Most often
    /// a directive written at the pool names' indentation.
    fn misplaced_pool_value(&mut self, found: String, empty: bool) -> Fault {
        let Some((name, name_at)) = self.name.take() else {
            return Fault::at(Pos::START, ConfigErrorKind::ComplexKey { what: "list" });
        };
        if directives::lookup(&name).is_some() {
            return Fault::directive(
                name_at,
                &name,
                ConfigErrorKind::Outdented {
                    directive: name.clone(),
                    pool: self.previous_pool.clone(),
                },
            );
        }
        if empty && let Some(fault) = self.outdented_ahead(Some(name.clone())) {
            return fault;
        }
        Fault::at(
            name_at,
            ConfigErrorKind::PoolNotMapping { pool: name, found },
        )
    }

    /// When the next event is a directive name at the pool names' depth and it does not open a
    /// pool of its own, the directive was meant for `pool` but is not indented.
    fn outdented_ahead(&mut self, pool: Option<String>) -> Option<Fault> {
        let (name, at) = match self.events.peek(0)? {
            (Event::Scalar(name, ..), span) if directives::lookup(name).is_some() => {
                (name.to_string(), self.source.pos(span.start))
            }
            _ => return None,
        };
        if matches!(self.events.peek(1), Some((Event::MappingStart(..), _))) {
            return None;
        }
        Some(Fault::directive(
            at,
            &name,
            ConfigErrorKind::Outdented {
                directive: name.clone(),
                pool,
            },
        ))
    }
}
