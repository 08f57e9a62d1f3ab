//! What a test describes and reads back: report configurations, stored items and how
//! their bodies go on the wire.

use chrono::{DateTime, Utc};

use super::fixed_time;

/// How a stored item's body goes on the wire; the docs leave open whether the real server
/// labels its gzip with `Content-Encoding`, so the fake serves every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    GzipWithHeader,
    GzipNoHeader,
    Plain,
}

/// What a stored item's listed `size` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedSize {
    /// The bytes on the wire: the documented "compressed size".
    Wire,
    /// The plain report's length, whatever is served.
    Uncompressed,
    /// This number, whatever is served.
    Exactly(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeStatus {
    InProgress,
    Saved,
    Failed,
    Other(String),
}

impl FakeStatus {
    pub(super) fn as_wire(&self) -> &str {
        match self {
            Self::InProgress => "in_progress",
            Self::Saved => "saved",
            Self::Failed => "failed",
            Self::Other(s) => s,
        }
    }
}

/// One stored item as a test describes it.
#[derive(Debug, Clone)]
pub struct FakeStored {
    pub format: String,
    /// The plain (uncompressed) report.
    pub content: Vec<u8>,
    pub status: FakeStatus,
    pub shape: BodyShape,
    pub created_at: DateTime<Utc>,
    pub offset_in_created_at: bool,
    pub with_id: bool,
    pub with_size: bool,
    /// What the listing's `size` counts: the bytes served (documented), or, as a cloud that
    /// drifts from its spec might, the uncompressed report.
    pub listed_size: ListedSize,
    /// An `in_progress` item flips to `becomes` once its report's stored list was served
    /// this many times.
    pub saved_after_listings: Option<u32>,
    pub becomes: FakeStatus,
}

impl FakeStored {
    pub fn new(format: &str, content: Vec<u8>) -> Self {
        Self {
            format: format.to_owned(),
            content,
            status: FakeStatus::Saved,
            shape: BodyShape::GzipWithHeader,
            created_at: fixed_time(),
            offset_in_created_at: true,
            with_id: true,
            with_size: true,
            listed_size: ListedSize::Wire,
            saved_after_listings: None,
            becomes: FakeStatus::Saved,
        }
    }
    pub fn shape(mut self, shape: BodyShape) -> Self {
        self.shape = shape;
        self
    }
    pub fn status(mut self, status: FakeStatus) -> Self {
        self.status = status;
        self
    }
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = at;
        self
    }
    /// `in_progress` now, `saved` once its report's stored list has been served `n` times.
    pub fn saved_after(mut self, n: u32) -> Self {
        self.status = FakeStatus::InProgress;
        self.saved_after_listings = Some(n);
        self.becomes = FakeStatus::Saved;
        self
    }
}

/// A report configuration as a test describes it.
#[derive(Debug, Clone)]
pub struct FakeReport {
    pub result_action: String,
    pub kind: String,
    pub level: String,
    pub formats: Vec<String>,
    pub schedule_type: String,
    /// `schedule.enabled`.
    pub enabled: bool,
}

impl FakeReport {
    /// A monthly `save` report of kind `usage_summary`, level `direct_partners`.
    pub fn new(formats: &[&str]) -> Self {
        Self {
            result_action: "save".into(),
            kind: "usage_summary".into(),
            level: "direct_partners".into(),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
            schedule_type: "monthly".into(),
            enabled: true,
        }
    }
}

/// What the server holds for one stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredView {
    pub id: String,
    pub format: String,
    pub status: FakeStatus,
    pub plain: Vec<u8>,
    /// The exact bytes served by the download endpoint.
    pub wire: Vec<u8>,
    pub created_at: DateTime<Utc>,
}
