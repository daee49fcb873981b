//! The metadata JSON written beside a recording: the room, when it started
//! and ended, who was there (joins and leaves) and who spoke when. Times
//! are RFC 3339 UTC; `offset_s` is seconds since the recording started.

use std::time::SystemTime;

use proto::jibri::RecordingMode;
use serde::Serialize;

use crate::upload::utc_stamp;

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub id: String,
    pub name: String,
    pub joined: Vec<f64>,
    pub left: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Spoke {
    pub id: String,
    pub offset_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub room: String,
    pub session: String,
    pub mode: String,
    pub start: String,
    pub end: Option<String>,
    pub duration_s: Option<f64>,
    pub location: Option<String>,
    pub participants: Vec<Participant>,
    pub speakers: Vec<Spoke>,
    #[serde(skip)]
    began: Option<SystemTime>,
}

impl Metadata {
    pub fn new(room: &str, session: &str, mode: RecordingMode, began: SystemTime) -> Metadata {
        Metadata {
            room: room.to_owned(),
            session: session.to_owned(),
            mode: mode.as_str().to_owned(),
            start: utc_stamp(began),
            end: None,
            duration_s: None,
            location: None,
            participants: Vec::new(),
            speakers: Vec::new(),
            began: Some(began),
        }
    }

    fn offset(&self) -> f64 {
        self.began
            .and_then(|b| SystemTime::now().duration_since(b).ok())
            .map(|d| (d.as_millis() as f64) / 1000.0)
            .unwrap_or(0.0)
    }

    pub fn joined(&mut self, id: &str, name: &str) {
        let at = self.offset();
        match self.participants.iter_mut().find(|p| p.id == id) {
            Some(p) => {
                p.name = name.to_owned();
                p.joined.push(at);
            }
            None => self.participants.push(Participant {
                id: id.to_owned(),
                name: name.to_owned(),
                joined: vec![at],
                left: Vec::new(),
            }),
        }
    }

    pub fn left(&mut self, id: &str) {
        let at = self.offset();
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == id) {
            p.left.push(at);
        }
    }

    pub fn spoke(&mut self, id: &str) {
        if self.speakers.last().is_some_and(|s| s.id == id) {
            return;
        }
        let at = self.offset();
        self.speakers.push(Spoke {
            id: id.to_owned(),
            offset_s: at,
        });
    }

    /// The document as written, at `end`.
    pub fn finish(&self, end: SystemTime, location: &str) -> Metadata {
        let mut m = self.clone();
        m.end = Some(utc_stamp(end));
        m.duration_s = self
            .began
            .and_then(|b| end.duration_since(b).ok())
            .map(|d| d.as_millis() as f64 / 1000.0);
        m.location = Some(location.to_owned());
        m
    }
}
