//! Events rebuilt with safe values, for the formats (pretty, JSON) that format an event's
//! fields with their own visitor instead of `fmt_fields`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::fields::{error_text, text_str};
use crate::redact;
use crate::untrusted::{self, LOG_FIELD_MAX};

/// For the formats that format event fields with their own visitor (pretty, JSON): the
/// event is rebuilt with safe values, then handed to the inner format.
pub(super) struct SafeEvents<F> {
    pub(super) inner: F,
    pub(super) json: bool,
}

/// Fields of one event that are formatted; an event of ours has far fewer.
const MAX_EVENT_FIELDS: usize = 32;

/// Writes its text as is, for `{:?}`: a value already made safe.
struct Verbatim(String);

impl fmt::Debug for Verbatim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum SafeValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(String),
    Text(tracing::field::DebugValue<Verbatim>),
}

impl SafeValue {
    fn as_value(&self) -> &dyn tracing::Value {
        match self {
            Self::I64(v) => v,
            Self::U64(v) => v,
            Self::F64(v) => v,
            Self::Bool(v) => v,
            Self::Str(v) => v,
            Self::Text(v) => v,
        }
    }
}

struct CollectSafe {
    json: bool,
    fields: Vec<(Field, SafeValue)>,
}

impl CollectSafe {
    fn push(&mut self, field: &Field, value: SafeValue) {
        if self.fields.len() < MAX_EVENT_FIELDS {
            self.fields.push((field.clone(), value));
        }
    }

    fn text(&mut self, field: &Field, raw: &str) {
        let text = if self.json {
            untrusted::truncate(&redact::scrub(raw), LOG_FIELD_MAX).into_owned()
        } else {
            untrusted::sanitize(raw, LOG_FIELD_MAX)
        };
        self.push(
            field,
            SafeValue::Text(tracing::field::debug(Verbatim(text))),
        );
    }
}

impl Visit for CollectSafe {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, SafeValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, SafeValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, SafeValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, SafeValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.json {
            let value = untrusted::truncate(&redact::scrub(value), LOG_FIELD_MAX).into_owned();
            self.push(field, SafeValue::Str(value));
        } else {
            let text = text_str(field, value);
            self.push(
                field,
                SafeValue::Text(tracing::field::debug(Verbatim(text))),
            );
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, &error_text(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, &format!("{value:?}"));
    }
}

impl<S, N, F> FormatEvent<S, N> for SafeEvents<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut safe = CollectSafe {
            json: self.json,
            fields: Vec::new(),
        };
        event.record(&mut safe);
        let Some((filler, _)) = safe.fields.first() else {
            return self.inner.format_event(ctx, writer, event);
        };
        // A value set is built from a fixed-size array; the slots past the last field
        // repeat a field without a value, which records nothing.
        let entries: [(&Field, Option<&dyn tracing::Value>); MAX_EVENT_FIELDS] =
            std::array::from_fn(|i| match safe.fields.get(i) {
                Some((field, value)) => (field, Some(value.as_value())),
                None => (filler, None),
            });
        let metadata = event.metadata();
        let values = metadata.fields().value_set(&entries);
        let rebuilt = if event.is_contextual() {
            Event::new(metadata, &values)
        } else {
            Event::new_child_of(event.parent().cloned(), metadata, &values)
        };
        self.inner.format_event(ctx, writer, &rebuilt)
    }
}
