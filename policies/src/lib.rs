//! The pgcache policy file (work in progress).
