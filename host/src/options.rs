//! Reading the option objects that JavaScript passes in.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::HostError;

/// Largest integer a JavaScript number represents exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Reads `object[name]`; `undefined` and `null` become `None`.
pub fn field(object: &JsValue, name: &str) -> Result<Option<JsValue>, HostError> {
    if object.is_undefined() || object.is_null() {
        return Ok(None);
    }
    if !object.is_object() {
        return Err(HostError::InvalidRequest(format!(
            "options must be an object, got {object:?}"
        )));
    }
    let value = Reflect::get(object, &name.into())
        .map_err(|_| HostError::InvalidRequest(format!("could not read option {name}")))?;
    Ok(if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(value)
    })
}

/// Reads an optional string option.
pub fn string(object: &JsValue, name: &str) -> Result<Option<String>, HostError> {
    match field(object, name)? {
        None => Ok(None),
        Some(value) => value.as_string().map(Some).ok_or_else(|| {
            HostError::InvalidRequest(format!("{name} must be a string, got {value:?}"))
        }),
    }
}

/// Reads an optional non-negative integer option no larger than `max`.
pub fn integer(object: &JsValue, name: &str, max: u32) -> Result<Option<u32>, HostError> {
    match field(object, name)? {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            Some(number) if number.fract() == 0.0 && (0.0..=f64::from(max)).contains(&number) => {
                Ok(Some(number as u32))
            }
            _ => Err(HostError::InvalidRequest(format!(
                "{name} must be an integer from 0 to {max}, got {value:?}"
            ))),
        },
    }
}

/// Reads an optional number option.
pub fn number(object: &JsValue, name: &str) -> Result<Option<f64>, HostError> {
    match field(object, name)? {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| {
            HostError::InvalidRequest(format!("{name} must be a number, got {value:?}"))
        }),
    }
}

/// Reads a required seed: an integer number from 0 to 2^53 - 1, or a BigInt from 0 to
/// 2^64 - 1.
pub fn seed(object: &JsValue) -> Result<u64, HostError> {
    let Some(value) = field(object, "seed")? else {
        return Err(HostError::InvalidRequest(
            "seed is required: pass an integer from 0 to 2^53 - 1, or a BigInt".into(),
        ));
    };
    if let Some(bigint) = value.dyn_ref::<js_sys::BigInt>() {
        return u64::try_from(bigint.clone()).map_err(|_| {
            HostError::InvalidRequest(format!("seed {value:?} is out of range; use 0 to 2^64 - 1"))
        });
    }
    match value.as_f64() {
        Some(number) if number.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&number) => {
            Ok(number as u64)
        }
        _ => Err(HostError::InvalidRequest(format!(
            "seed {value:?} is invalid; use an integer from 0 to 2^53 - 1, or a BigInt"
        ))),
    }
}

/// Reads an optional function option.
pub fn function(object: &JsValue, name: &str) -> Result<Option<js_sys::Function>, HostError> {
    match field(object, name)? {
        None => Ok(None),
        Some(value) => value
            .dyn_into::<js_sys::Function>()
            .map(Some)
            .map_err(|value| {
                HostError::InvalidRequest(format!("{name} must be a function, got {value:?}"))
            }),
    }
}
