//! End-to-end tests: the whole service on free ports with a fresh database,
//! driven over HTTP and through the `dialcrm` binary, on both backends.

mod access;
mod acme;
mod assignment;
mod bidi;
mod campaigns;
mod cli;
mod compliance;
mod contacts;
mod desk;
mod dial;
mod dialler;
mod dnc;
mod fields;
mod firefox;
mod helpers;
mod https;
mod listen;
mod listen_page;
mod lists;
mod login;
mod manual;
mod nodes;
mod ops;
mod privacy;
mod privacy_aggregate;
mod reports;
mod restarts;
mod softphone;
mod softphone_controls;
mod stream;
mod tenancy;
mod trunks;
mod wallboard;
