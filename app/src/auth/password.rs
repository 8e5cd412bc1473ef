//! Password hashing with Argon2id at the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow, so it runs on the blocking pool, at most one per core at a
//! time: a burst of sign-ins queues instead of starving the async runtime.

use crate::error::AppError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

pub use super::password_policy::{MAX_LEN, MIN_LEN};

static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    ))
});

/// End users' sign-ins hash on their own permits, one fewer than the cores (at least one):
/// a flood of end-user sign-ins queues there and never takes the staff console's.
static END_USER_HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    Arc::new(Semaphore::new(
        std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1),
    ))
});

/// A hash of a password nobody knows: unknown emails are checked against it, so they take
/// as long as known ones.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let secret = generate_one_time_password();
    hash_blocking(&secret).ok()
});

/// The OWASP-recommended Argon2id parameters.
pub fn hasher() -> Argon2<'static> {
    // Params::DEFAULT is m=19456 KiB, t=2, p=1 (checked in the tests below).
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    on_pool(&HASHING, work).await
}

async fn on_pool<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    // The permit moves into the blocking job: a request dropped mid-hash (client gone,
    // shutdown) does not free a slot while its hash is still running.
    let permit = Arc::clone(permits)
        .acquire_owned()
        .await
        .map_err(|e| AppError::internal(&e))?;
    tokio::task::spawn_blocking(move || {
        let _held = permit;
        work()
    })
    .await
    .map_err(|e| AppError::internal(&e))
}

/// Hashes a new password.
pub async fn hash(password: &str) -> Result<String, AppError> {
    let password = Zeroizing::new(password.to_owned());
    on_blocking_pool(move || hash_blocking(&password))
        .await?
        .map_err(|e| AppError::internal(&e))
}

/// Checks `password` against `hash`; with no hash (unknown account), spends the same time
/// against a dummy hash and answers `false`.
pub async fn verify(password: &str, hash: Option<&str>) -> Result<bool, AppError> {
    verify_on(&HASHING, password, hash).await
}

async fn verify_on(
    permits: &Arc<Semaphore>,
    password: &str,
    hash: Option<&str>,
) -> Result<bool, AppError> {
    let password = Zeroizing::new(password.to_owned());
    let hash = hash.map(str::to_owned);
    on_pool(permits, move || match hash {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                verify_blocking(&password, dummy);
            }
            false
        }
    })
    .await
}

/// [`verify`] for an end user's sign-in, on the end users' own permits.
pub async fn verify_end_user(password: &str, hash: Option<&str>) -> Result<bool, AppError> {
    verify_on(&END_USER_HASHING, password, hash).await
}

/// [`hash`] for an end user's password, on the end users' own permits.
pub async fn hash_end_user(password: &str) -> Result<String, AppError> {
    let password = Zeroizing::new(password.to_owned());
    on_pool(&END_USER_HASHING, move || hash_blocking(&password))
        .await?
        .map_err(|e| AppError::internal(&e))
}

/// Computes the dummy hash ahead of the first unknown-email sign-in. Without it unknown
/// emails would answer faster than known ones, so its failure stops the server.
pub async fn warm_up() -> Result<(), AppError> {
    let ready = tokio::task::spawn_blocking(|| DUMMY_HASH.is_some())
        .await
        .map_err(|e| AppError::internal(&e))?;
    if ready {
        Ok(())
    } else {
        Err(AppError::internal(
            &"computing the dummy password hash failed",
        ))
    }
}

/// Checks a new password against the policy; `field` names the form field for the message.
pub fn validate_new(password: &str, email: &str, field: &str) -> Result<(), AppError> {
    check_length(password, field)?;
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if !email.is_empty() && lower.contains(&email) {
        return Err(AppError::validation(
            field,
            "The password must not contain your email address.",
        ));
    }
    // A local part of two letters ("jo") would refuse half the dictionary; three and up
    // is what an attacker tries first.
    if local.chars().count() >= 3 && lower.contains(local) {
        return Err(AppError::validation(
            field,
            "The password must not contain the name in your email address.",
        ));
    }
    if is_common(password) {
        return Err(AppError::validation(
            field,
            "That password is on lists of common passwords that attackers try first: choose another.",
        ));
    }
    Ok(())
}

/// The length rule alone (12–128 characters): cheap, so it can be checked before anything
/// that costs work.
pub fn check_length(password: &str, field: &str) -> Result<(), AppError> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(AppError::validation(
            field,
            format!("Use at least {MIN_LEN} characters."),
        ));
    }
    if chars > MAX_LEN {
        return Err(AppError::validation(
            field,
            format!("Use at most {MAX_LEN} characters."),
        ));
    }
    Ok(())
}

/// Whether `password` is, or is a light variation of (case, l33t, reversal, a digit or two
/// appended), a password on the published lists of common ones, or as easy to guess.
///
/// zxcvbn's list holds 30,000 leaked passwords; its score 0 or 1 means "guessable within
/// about a million guesses" (repeats, sequences, keyboard walks, dictionary words with
/// decoration), which an online attacker with a list reaches.
fn is_common(password: &str) -> bool {
    use zxcvbn::feedback::Warning;
    // zxcvbn's matching grows faster than linearly with length on repetitive input: score
    // the first 64 characters, which bounds the work (a password whose first 64 characters
    // are not guessable is not guessable).
    let head: String = password.chars().take(64).collect();
    let entropy = zxcvbn::zxcvbn(&head, &[]);
    let listed = entropy
        .feedback()
        .and_then(|f| f.warning())
        .is_some_and(|w| {
            matches!(
                w,
                Warning::ThisIsATop10Password
                    | Warning::ThisIsATop100Password
                    | Warning::ThisIsACommonPassword
                    | Warning::ThisIsSimilarToACommonlyUsedPassword
            )
        });
    listed || u8::from(entropy.score()) <= 1
}

/// A random password to hand over once (new staff, reset): 20 characters from an alphabet
/// without look-alikes, about 115 bits.
pub fn generate_one_time_password() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_the_owasp_argon2id_parameters() {
        let params = Params::DEFAULT;
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19456, 2, 1)
        );
        let hash = hash_blocking("correct horse battery").expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let hash = hash("correct horse battery").await.expect("hash");
        assert!(verify("correct horse battery", Some(&hash))
            .await
            .expect("verify"));
        assert!(!verify("correct horse batter", Some(&hash))
            .await
            .expect("verify"));
        assert!(!verify("anything", None).await.expect("verify"));
        assert!(!verify("anything", Some("not a hash"))
            .await
            .expect("verify"));
    }

    #[test]
    fn policy_explains_what_is_wrong() {
        assert!(validate_new("short", "a@b.c", "password").is_err());
        assert!(validate_new(&"x".repeat(129), "a@b.c", "password").is_err());
        assert!(validate_new("alice@example.com", "alice@example.com", "password").is_err());
        assert_eq!(
            validate_new("a long enough secret", "a@b.c", "password"),
            Ok(())
        );
        let message = |p: &str| match validate_new(p, "alice.smith@example.com", "new") {
            Err(AppError::Validation { field, message }) => {
                assert_eq!(field, "new");
                message
            }
            other => panic!("{p:?} was not refused: {other:?}"),
        };
        // The email, or its local part, anywhere in it, in any case.
        assert!(message("my ALICE.SMITH@example.com pw").contains("email address"));
        assert!(message("xxAlice.Smith-2026!!").contains("name in your email"));
        // Common passwords and their light variations.
        for common in [
            "password1234",
            "Password123!",
            "qwertyuiop123",
            "1234567890123",
            "iloveyou1234",
            "aaaaaaaaaaaa",
            "P@ssw0rd2024",
        ] {
            assert!(message(common).contains("common passwords"), "{common}");
        }
    }

    #[test]
    fn one_time_passwords_are_long_and_distinct() {
        let a = generate_one_time_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_one_time_password());
        assert_eq!(validate_new(&a, "a@b.c", "password"), Ok(()));
    }
}
