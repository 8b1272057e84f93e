//! What a dialog says about an operation before the user agrees to it: plain lines, and loud ones
//! (a lost quorum, the leader) that make the dialog ask for a deliberate yes.

/// One line of a dialog: `loud` lines are warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub loud: bool,
}

impl Note {
    pub fn plain(text: impl Into<String>) -> Self {
        Note { text: text.into(), loud: false }
    }

    pub fn loud(text: impl Into<String>) -> Self {
        Note { text: text.into(), loud: true }
    }
}
