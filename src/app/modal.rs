//! The one dialog that may be open over the console. While it is open, keys go to it (update's
//! `on_typed`), it is drawn over the view (ui's `render`), and keys typed before it was drawn are
//! dropped (`mark`): each of these is one match over `Modal`, so a new dialog is one new arm in each.

use crate::app::edit::Dialog;
use crate::app::members::MemberDialog;
use crate::app::restore::RestoreWizard;
use crate::app::state::{SnapshotDialog, State};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// A write of the key browser waiting for the user's yes (or for etcd's answer).
    Keys(Dialog),
    /// A member maintenance operation, an auth change or a member's replacement.
    Member(MemberDialog),
    /// A snapshot being saved, or what its verification found, until dismissed.
    Snapshot(SnapshotDialog),
    /// The restore wizard.
    Restore(RestoreWizard),
}

impl Modal {
    /// Which dialog and which question it asks, as a mark that changes whenever the user is asked
    /// something new (not when text is typed into it).
    pub fn mark(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        use std::mem::discriminant;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match self {
            Modal::Keys(d) => {
                (1u8, discriminant(d)).hash(&mut h);
                if let Dialog::Confirm { typed, .. } = d {
                    typed.is_some().hash(&mut h);
                }
            }
            Modal::Member(m) => {
                (2u8, discriminant(m)).hash(&mut h);
                match m {
                    MemberDialog::Confirm { op, deliberate, .. } => (op.describe(), deliberate).hash(&mut h),
                    MemberDialog::Replace(r) => (r.confirmed, r.finished()).hash(&mut h),
                    MemberDialog::Running { .. } | MemberDialog::Result { .. } => {}
                }
            }
            Modal::Snapshot(s) => (3u8, discriminant(s)).hash(&mut h),
            Modal::Restore(r) => (4u8, discriminant(r)).hash(&mut h),
        }
        h.finish()
    }
}

/// Each dialog's own view of the one slot: a feature reads and changes its dialog through these,
/// and never sees another's.
impl State {
    pub fn key_dialog(&self) -> Option<&Dialog> {
        match &self.modal {
            Some(Modal::Keys(d)) => Some(d),
            _ => None,
        }
    }

    /// Takes the key browser's dialog out of the slot (the slot is then empty); None, and the slot
    /// left as it was, when another dialog is open.
    pub fn take_key_dialog(&mut self) -> Option<Dialog> {
        match self.modal.take() {
            Some(Modal::Keys(d)) => Some(d),
            other => {
                self.modal = other;
                None
            }
        }
    }

    pub fn member_dialog(&self) -> Option<&MemberDialog> {
        match &self.modal {
            Some(Modal::Member(d)) => Some(d),
            _ => None,
        }
    }

    pub fn member_dialog_mut(&mut self) -> Option<&mut MemberDialog> {
        match &mut self.modal {
            Some(Modal::Member(d)) => Some(d),
            _ => None,
        }
    }

    /// Takes the member dialog out of the slot, as `take_key_dialog` does.
    pub fn take_member_dialog(&mut self) -> Option<MemberDialog> {
        match self.modal.take() {
            Some(Modal::Member(d)) => Some(d),
            other => {
                self.modal = other;
                None
            }
        }
    }

    pub fn snapshot_dialog(&self) -> Option<&SnapshotDialog> {
        match &self.modal {
            Some(Modal::Snapshot(d)) => Some(d),
            _ => None,
        }
    }

    pub fn snapshot_dialog_mut(&mut self) -> Option<&mut SnapshotDialog> {
        match &mut self.modal {
            Some(Modal::Snapshot(d)) => Some(d),
            _ => None,
        }
    }

    pub fn restore_wizard(&self) -> Option<&RestoreWizard> {
        match &self.modal {
            Some(Modal::Restore(w)) => Some(w),
            _ => None,
        }
    }

    pub fn restore_wizard_mut(&mut self) -> Option<&mut RestoreWizard> {
        match &mut self.modal {
            Some(Modal::Restore(w)) => Some(w),
            _ => None,
        }
    }

    /// Takes the restore wizard out of the slot, as `take_key_dialog` does.
    pub fn take_restore_wizard(&mut self) -> Option<RestoreWizard> {
        match self.modal.take() {
            Some(Modal::Restore(w)) => Some(w),
            other => {
                self.modal = other;
                None
            }
        }
    }

    /// Which dialog is open and which question it asks (`Modal::mark`); None while none is open.
    pub fn modal_mark(&self) -> Option<u64> {
        self.modal.as_ref().map(Modal::mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::members::MemberOp;
    use std::time::Duration;

    fn state() -> State {
        State::new(vec!["http://127.0.0.1:2379".into()], None, Duration::from_secs(1))
    }

    #[test]
    fn each_feature_sees_only_its_own_dialog() {
        let mut s = state();
        let dialog = Dialog::Counting { request: 1, prefix: b"p/".to_vec() };
        s.modal = Some(Modal::Keys(dialog.clone()));
        assert_eq!(s.key_dialog(), Some(&dialog));
        assert!(s.member_dialog().is_none() && s.snapshot_dialog().is_none() && s.restore_wizard().is_none());
        // Taking another feature's dialog leaves the open one in place.
        assert!(s.take_member_dialog().is_none() && s.take_restore_wizard().is_none());
        assert_eq!(s.key_dialog(), Some(&dialog));
        assert_eq!(s.take_key_dialog(), Some(dialog));
        assert!(s.modal.is_none() && s.modal_mark().is_none());
    }

    #[test]
    fn the_mark_changes_with_the_question_not_with_progress() {
        let op = MemberOp::Remove { id: 7, name: "n1".into() };
        let confirm =
            Modal::Member(MemberDialog::Confirm { op: op.clone(), notes: Vec::new(), deliberate: false });
        let deliberate =
            Modal::Member(MemberDialog::Confirm { op: op.clone(), notes: Vec::new(), deliberate: true });
        let running = |progress: Vec<String>| {
            Modal::Member(MemberDialog::Running { request: 1, op: op.clone(), progress })
        };
        assert_ne!(confirm.mark(), deliberate.mark());
        assert_ne!(confirm.mark(), running(Vec::new()).mark());
        assert_eq!(running(Vec::new()).mark(), running(vec!["n1 done".into()]).mark());
        let counting = Modal::Keys(Dialog::Counting { request: 1, prefix: Vec::new() });
        assert_ne!(counting.mark(), running(Vec::new()).mark());
    }
}
