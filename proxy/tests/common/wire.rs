//! Builders of the frontend messages drivers send, for tests that must send
//! exactly those bytes (extended-protocol batches, pipelines, FunctionCall).
//! Parameters and results are always in text format, so answers stay
//! readable and comparable.

#![allow(dead_code)]

use super::raw::message;

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Text parameters, NULL as `None`: the count, then each length and bytes.
fn text_values(out: &mut Vec<u8>, values: &[Option<String>]) {
    out.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for value in values {
        match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

/// A simple-protocol Query ('Q'); it may hold several statements.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, sql);
    message(b'Q', &body)
}

/// Parse ('P') of `sql` as statement `name` ("" is the unnamed one), letting
/// the server infer every parameter type.
pub fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, name);
    cstr(&mut body, sql);
    body.extend_from_slice(&0i16.to_be_bytes());
    message(b'P', &body)
}

/// Bind ('B') of `statement` to `portal` with text parameters and text results.
pub fn bind(portal: &str, statement: &str, params: &[Option<String>]) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, portal);
    cstr(&mut body, statement);
    body.extend_from_slice(&0i16.to_be_bytes());
    text_values(&mut body, params);
    body.extend_from_slice(&0i16.to_be_bytes());
    message(b'B', &body)
}

fn named(tag: u8, kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    cstr(&mut body, name);
    message(tag, &body)
}

/// Describe ('D') of a portal.
pub fn describe_portal(portal: &str) -> Vec<u8> {
    named(b'D', b'P', portal)
}

/// Describe ('D') of a prepared statement.
pub fn describe_statement(name: &str) -> Vec<u8> {
    named(b'D', b'S', name)
}

/// Close ('C') of a prepared statement; closing an unknown name is no error.
pub fn close_statement(name: &str) -> Vec<u8> {
    named(b'C', b'S', name)
}

/// Close ('C') of a portal.
pub fn close_portal(name: &str) -> Vec<u8> {
    named(b'C', b'P', name)
}

/// Execute ('E') of `portal`, all rows when `max_rows` is 0.
pub fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, portal);
    body.extend_from_slice(&max_rows.to_be_bytes());
    message(b'E', &body)
}

pub fn sync() -> Vec<u8> {
    message(b'S', &[])
}

pub fn flush() -> Vec<u8> {
    message(b'H', &[])
}

/// FunctionCall ('F') of the function with OID `function`, text arguments and
/// a text result.
pub fn function_call(function: u32, args: &[Option<String>]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&function.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    text_values(&mut body, args);
    body.extend_from_slice(&0i16.to_be_bytes());
    message(b'F', &body)
}
