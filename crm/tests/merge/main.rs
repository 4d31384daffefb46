//! Duplicate contacts found and merged, a merge undone within its day or
//! made final after it, erasure during that day, and the numbers the kept
//! contact keeps, on both backends.

mod finding;
mod fixture;
mod merging;
mod numbers;
mod undoing;

use finding::*;
use merging::*;
use numbers::*;
use undoing::*;

crm::on_both_backends!(
    duplicates_are_found_by_email_number_and_name_at_a_postcode,
    the_account_pages_list_each_pair_once,
    a_merge_moves_every_kind_of_history_and_fills_only_empty_fields,
    suppression_becomes_the_union_and_undo_takes_back_only_its_own,
    an_undo_puts_both_contacts_back_as_they_were,
    merges_are_refused_across_accounts_in_calls_and_on_stale_versions,
    of_two_merges_at_once_one_wins_and_the_other_is_refused,
    a_merge_is_told_to_endpoints_by_ids_and_an_undo_keeps_the_delivery,
    erasing_either_contact_clears_what_the_merge_could_undo,
    a_merge_becomes_final_after_a_day,
    numbers_follow_merges_and_an_undo_puts_them_back_exactly,
    erasing_a_merged_contact_takes_its_numbers_from_the_kept_one,
);
