//! End-to-end tests of the embedded deployment: real sockets, real layers, one process.

mod access;
mod admin;
mod auth;
mod bad_input;
mod blocks;
mod chat;
mod cli;
mod crash;
mod delivery;
mod descriptors;
mod docs;
mod edits;
mod groups;
mod handshake;
mod harness;
mod history;
mod image_memory;
mod private_groups;
mod process;
mod profiles;
mod raw_frames;
mod receipts;
mod social;
mod typing;
