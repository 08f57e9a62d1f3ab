//! The last line of defence: each formatted line is scrubbed once more as it is written.

use tracing_subscriber::fmt::MakeWriter;

use crate::redact;
use crate::untrusted;

/// Scrubs every formatted line once more before it is written, and in JSON escapes the
/// bidi and C1 characters serde_json leaves raw.
pub(super) struct Scrubbing<M> {
    pub(super) inner: M,
    pub(super) json: bool,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbing<M> {
    type Writer = ScrubbingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter {
            inner: self.inner.make_writer(),
            json: self.json,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        ScrubbingWriter {
            inner: self.inner.make_writer_for(meta),
            json: self.json,
        }
    }
}

pub(super) struct ScrubbingWriter<W> {
    inner: W,
    json: bool,
}

impl<W: std::io::Write> std::io::Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer hands over each formatted event whole, as one UTF-8 string.
        match std::str::from_utf8(buf) {
            Ok(line) => {
                let scrubbed = redact::scrub(line);
                let out = if self.json {
                    untrusted::json_escape_invisible(&scrubbed)
                } else {
                    scrubbed
                };
                self.inner.write_all(out.as_bytes())?;
            }
            Err(_) => self.inner.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
