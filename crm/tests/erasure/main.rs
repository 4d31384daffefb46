//! Erasure and subject access, proven on the bytes the database keeps.
//!
//! The main test plants distinctive values in every place a contact's data
//! lives, checks they are really there in the SQLite file and WAL (or the
//! PostgreSQL dump), erases the contact, and then finds none of them there
//! or in the recordings folder, while the number stays suppressed and is
//! never claimed again, even after it is imported anew.

mod cases;
mod fixture;
mod merged;

use cases::*;
use merged::*;

crm::on_both_backends!(
    erased_contact_leaves_no_trace_and_is_never_dialled_again,
    subject_access_holds_everything_about_the_contact,
    an_earlier_opt_out_keeps_its_reason_but_loses_the_number,
    a_foreign_contact_cannot_be_erased,
    a_removed_field_leaves_no_value_behind,
    a_merged_contact_is_erased_with_the_one_it_was_merged_into,
);
