//! A software passkey authenticator, as a browser with a platform authenticator would answer
//! `navigator.credentials.create()` and `.get()`: P-256 keys (ring), "none" attestation, a
//! discoverable credential that keeps its user handle, and a sign counter. The tests drive the
//! real WebAuthn ceremonies of the token function with it, and bend it for the attacks: another
//! origin or relying party id, a replayed assertion, a counter set back.
//!
//! (`webauthn-authenticator-rs`'s soft tokens keep no resident keys and send no user handle, so
//! they cannot sign in without a username; the encoding here is the few fixed CBOR shapes of
//! WebAuthn §6.1 and §6.5.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

/// One discoverable credential the authenticator holds.
pub struct Credential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    key: EcdsaKeyPair,
    /// The sign counter, one more at each assertion; 0 keeps it at 0 (an authenticator without
    /// one, as synced passkeys are).
    pub counter: u32,
}

/// The authenticator and the page it is used from.
pub struct Authenticator {
    /// The origin the browser writes into the client data (the page's).
    pub origin: String,
    /// When set, the relying party id the authenticator signs for instead of the options' own
    /// (a phishing page's).
    pub rp_id_override: Option<String>,
    pub credentials: Vec<Credential>,
    /// Whether new credentials count signatures (else their counter stays 0).
    pub counts: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url in WebAuthn options")
}

// The CBOR of the few shapes here (RFC 8949 §3): a head, then the content.
fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
    }
}
fn cbor_int(n: i64) -> Vec<u8> {
    if n >= 0 {
        head(0, n as u64)
    } else {
        head(1, (-1 - n) as u64)
    }
}
fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    [head(2, b.len() as u64), b.to_vec()].concat()
}
fn cbor_text(s: &str) -> Vec<u8> {
    [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

impl Authenticator {
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            rp_id_override: None,
            credentials: Vec::new(),
            counts: true,
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create({publicKey})` for the options `{"publicKey": ...}` the
    /// service sent: a new credential, as the JSON a client posts back.
    pub fn create(&mut self, options: &Value) -> Value {
        let options = &options["publicKey"];
        let rp_id = self
            .rp_id_override
            .clone()
            .unwrap_or_else(|| options["rp"]["id"].as_str().expect("rp.id").to_owned());
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("its key pair");
        let mut id = vec![0u8; 32];
        rng.fill(&mut id).expect("randomness");
        let point = key.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        // COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
        let cose = [
            head(5, 5),
            cbor_int(1),
            cbor_int(2),
            cbor_int(3),
            cbor_int(-7),
            cbor_int(-1),
            cbor_int(1),
            cbor_int(-2),
            cbor_bytes(x),
            cbor_int(-3),
            cbor_bytes(y),
        ]
        .concat();
        let auth_data = [
            digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec(),
            vec![UP | UV | AT],
            0u32.to_be_bytes().to_vec(),
            vec![0u8; 16],
            (id.len() as u16).to_be_bytes().to_vec(),
            id.clone(),
            cose,
        ]
        .concat();
        let attestation = [
            head(5, 3),
            cbor_text("fmt"),
            cbor_text("none"),
            cbor_text("attStmt"),
            head(5, 0),
            cbor_text("authData"),
            cbor_bytes(&auth_data),
        ]
        .concat();
        let client_data = self.client_data(
            "webauthn.create",
            options["challenge"].as_str().expect("challenge"),
        );
        self.credentials.push(Credential {
            id: id.clone(),
            rp_id,
            user_handle: unb64(options["user"]["id"].as_str().expect("user.id")),
            key,
            counter: 0,
        });
        json!({
            "id": b64(&id),
            "rawId": b64(&id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get({publicKey})` for the options `{"publicKey": ...}`: an
    /// assertion of the newest credential for the options' relying party (with an empty
    /// `allowCredentials` the authenticator chooses: a discoverable sign-in).
    pub fn get(&mut self, options: &Value) -> Value {
        let options = &options["publicKey"];
        let wanted = options["rpId"].as_str().expect("rpId").to_owned();
        let rp_id = self.rp_id_override.clone().unwrap_or(wanted);
        let counts = self.counts;
        let challenge = options["challenge"].as_str().expect("challenge").to_owned();
        let client_data = self.client_data("webauthn.get", &challenge);
        let credential = self
            .credentials
            .iter_mut()
            .rev()
            .find(|c| c.rp_id == rp_id || c.rp_id == options["rpId"].as_str().unwrap_or_default())
            .expect("a credential for this relying party");
        if counts {
            credential.counter += 1;
        }
        let auth_data = [
            digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec(),
            vec![UP | UV],
            credential.counter.to_be_bytes().to_vec(),
        ]
        .concat();
        let signed = [auth_data.clone(), digest(&SHA256, &client_data).as_ref().to_vec()].concat();
        let signature = credential
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("an ECDSA signature");
        json!({
            "id": b64(&credential.id),
            "rawId": b64(&credential.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&credential.user_handle),
            },
            "extensions": {},
        })
    }
}
