//! A job's place in the annotation workflow, as CVAT has it: its stage (annotation →
//! validation → acceptance), its state within the stage (new, in progress, completed,
//! rejected), and the status CVAT derives from the two. Pure rules, no I/O; the store keeps
//! the values and the server applies [`JobChange`]s.

use serde::{Deserialize, Serialize};

/// A job's stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Annotation,
    Validation,
    Acceptance,
}

/// A job's state within its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[serde(rename = "new")]
    New,
    #[serde(rename = "in progress")]
    InProgress,
    #[serde(rename = "completed")]
    Completed,
    #[serde(rename = "rejected")]
    Rejected,
}

/// The status CVAT derives (read-only in its API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Annotation,
    Validation,
    Completed,
}

impl Stage {
    /// CVAT's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Annotation => "annotation",
            Stage::Validation => "validation",
            Stage::Acceptance => "acceptance",
        }
    }

    /// Parses CVAT's name.
    pub fn parse(s: &str) -> Option<Stage> {
        [Stage::Annotation, Stage::Validation, Stage::Acceptance]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl State {
    /// CVAT's name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::InProgress => "in progress",
            State::Completed => "completed",
            State::Rejected => "rejected",
        }
    }

    /// Parses CVAT's name.
    pub fn parse(s: &str) -> Option<State> {
        [
            State::New,
            State::InProgress,
            State::Completed,
            State::Rejected,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl Status {
    /// CVAT's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Annotation => "annotation",
            Status::Validation => "validation",
            Status::Completed => "completed",
        }
    }

    /// CVAT's rule: the annotation stage is "annotation", an accepted job is "completed",
    /// anything else is "validation".
    pub fn of(stage: Stage, state: State) -> Status {
        match (stage, state) {
            (Stage::Annotation, _) => Status::Annotation,
            (Stage::Acceptance, State::Completed) => Status::Completed,
            _ => Status::Validation,
        }
    }
}

/// A requested change of a job's stage and state (the `PATCH /api/jobs/{id}` fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobChange {
    pub stage: Option<Stage>,
    pub state: Option<State>,
}

impl JobChange {
    /// The stage and state after the change. As in CVAT, moving a job to another stage without
    /// naming a state starts it again as "new".
    pub fn apply(self, stage: Stage, state: State) -> (Stage, State) {
        let new_stage = self.stage.unwrap_or(stage);
        let new_state = self.state.unwrap_or(if new_stage != stage {
            State::New
        } else {
            state
        });
        (new_stage, new_state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [Stage::Annotation, Stage::Validation, Stage::Acceptance] {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [
            State::New,
            State::InProgress,
            State::Completed,
            State::Rejected,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(State::parse("in_progress"), None);
    }

    #[test]
    fn stage_change_resets_state_unless_given() {
        let now = (Stage::Annotation, State::InProgress);
        let to = |stage, state| JobChange { stage, state }.apply(now.0, now.1);
        assert_eq!(
            to(None, Some(State::Completed)),
            (Stage::Annotation, State::Completed)
        );
        assert_eq!(
            to(Some(Stage::Validation), None),
            (Stage::Validation, State::New)
        );
        assert_eq!(to(Some(Stage::Annotation), None), now);
        assert_eq!(
            to(Some(Stage::Acceptance), Some(State::Completed)),
            (Stage::Acceptance, State::Completed)
        );
    }

    #[test]
    fn status_follows_cvat() {
        assert_eq!(
            Status::of(Stage::Annotation, State::Completed),
            Status::Annotation
        );
        assert_eq!(
            Status::of(Stage::Validation, State::New),
            Status::Validation
        );
        assert_eq!(
            Status::of(Stage::Acceptance, State::InProgress),
            Status::Validation
        );
        assert_eq!(
            Status::of(Stage::Acceptance, State::Completed),
            Status::Completed
        );
    }
}
