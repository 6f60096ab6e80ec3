//! The pgcache engine (work in progress).
