//! Field values made safe: secrets scrubbed, server text escaped and capped, as text
//! (`name=value`, `name: value`) or as a JSON object.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FormatFields, Writer};

use crate::redact;
use crate::untrusted::{self, LOG_FIELD_MAX};

/// Formats field values (of spans always; of events in the full and compact formats)
/// with secrets scrubbed, server text escaped and capped.
#[derive(Debug, Clone, Copy)]
pub(super) enum SafeFields {
    /// `name=value` like tracing's default, or `name: value` like its pretty format.
    Text { colon: bool },
    /// A JSON object, as the JSON event format expects a span's fields to be.
    Json,
}

impl<'writer> FormatFields<'writer> for SafeFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        match *self {
            Self::Text { colon } => {
                let ansi = writer.has_ansi_escapes();
                let mut visitor = TextVisitor {
                    writer: &mut writer,
                    ansi,
                    colon,
                    first: true,
                    result: Ok(()),
                };
                fields.record(&mut visitor);
                visitor.result
            }
            Self::Json => {
                let mut visitor = JsonVisitor::default();
                fields.record(&mut visitor);
                write!(writer, "{}", serde_json::Value::Object(visitor.0))
            }
        }
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        match *self {
            Self::Text { .. } => {
                if !current.fields.is_empty() {
                    current.fields.push(' ');
                }
                self.format_fields(current.as_writer(), fields)
            }
            Self::Json => {
                // The fields so far are one JSON object: merged, not appended to.
                let previous = serde_json::from_str(&current.fields).unwrap_or_default();
                let mut visitor = JsonVisitor(previous);
                fields.record(&mut visitor);
                current.fields = serde_json::Value::Object(visitor.0).to_string();
                Ok(())
            }
        }
    }
}

/// A field name as tracing's formatters show it (`r#type` as `type`).
fn field_name(field: &Field) -> &'static str {
    let name = field.name();
    name.strip_prefix("r#").unwrap_or(name)
}

/// A string field in the text formats: quoted like tracing's default (`account="acme"`),
/// the message bare.
pub(super) fn text_str(field: &Field, value: &str) -> String {
    if field.name() == "message" {
        return untrusted::sanitize(value, LOG_FIELD_MAX);
    }
    let scrubbed = redact::scrub(value);
    let capped = untrusted::truncate(&scrubbed, LOG_FIELD_MAX);
    // `{:?}` escapes quotes, backslashes and controls as tracing always has; the escape
    // after it catches what `{:?}` shows as itself.
    untrusted::escape_all(&format!("{capped:?}")).into_owned()
}

/// An error value with its sources, like tracing's default (`e e.sources=[a, b]`) but
/// as one value.
pub(super) fn error_text(value: &(dyn std::error::Error + 'static)) -> String {
    let mut text = value.to_string();
    let mut source = value.source();
    let mut sources = Vec::new();
    while let Some(s) = source {
        // Many messages quote their cause already: each cause is written once.
        let cause = s.to_string();
        if !cause.is_empty() && !text.contains(&cause) && !sources.contains(&cause) {
            sources.push(cause);
        }
        source = s.source();
    }
    if !sources.is_empty() {
        let _ = write!(text, " (sources: {})", sources.join(": "));
    }
    text
}

struct TextVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    ansi: bool,
    colon: bool,
    first: bool,
    result: fmt::Result,
}

impl TextVisitor<'_, '_> {
    fn write(&mut self, field: &Field, text: &str) {
        if self.result.is_err() {
            return;
        }
        let pad = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{pad}{text}")
        } else {
            let name = field_name(field);
            let eq = if self.colon { ": " } else { "=" };
            if self.ansi {
                // tracing's own styles: the name italic, the separator dimmed.
                write!(
                    self.writer,
                    "{pad}\x1b[3m{name}\x1b[0m\x1b[2m{eq}\x1b[0m{text}"
                )
            } else {
                write!(self.writer, "{pad}{name}{eq}{text}")
            }
        };
    }
}

impl Visit for TextVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let text = text_str(field, value);
        self.write(field, &text);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let text = untrusted::sanitize(&error_text(value), LOG_FIELD_MAX);
        self.write(field, &text);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = untrusted::sanitize(&format!("{value:?}"), LOG_FIELD_MAX);
        self.write(field, &text);
    }
}

/// A span's fields as a JSON object: strings scrubbed and capped, numbers kept.
#[derive(Default)]
struct JsonVisitor(serde_json::Map<String, serde_json::Value>);

impl JsonVisitor {
    fn text(&mut self, field: &Field, value: &str) {
        let value = untrusted::truncate(&redact::scrub(value), LOG_FIELD_MAX).into_owned();
        self.0.insert(
            field_name(field).to_owned(),
            serde_json::Value::String(value),
        );
    }
}

impl Visit for JsonVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field_name(field).to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field_name(field).to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field_name(field).to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                self.0.insert(field_name(field).to_owned(), n.into());
            }
            None => self.text(field, &value.to_string()),
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &error_text(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }
}
