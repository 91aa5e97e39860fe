"""SASL settings for PLAIN, SCRAM and OAUTHBEARER, and how credentials stay hidden.

Usage: python security_sasl.py
Builds the configs only (kclient's MockCluster has no SASL); pass the same keyword
arguments to AsyncProducer/AsyncConsumer/AsyncAdmin (or their sync twins) to connect.
"""

import time

from kclient import ConsumerConfig, ProducerConfig, Secret
from kclient.errors import ConfigError
from kclient.net.sasl.oauthbearer import OAuthBearerToken

BROKERS = "broker1.example.com:9093"

# SASL PLAIN: always over TLS (SASL_SSL); over SASL_PLAINTEXT the password travels in clear.
plain = ProducerConfig(
    bootstrap_servers=BROKERS,
    security_protocol="SASL_SSL",
    sasl_mechanism="PLAIN",
    sasl_username="alice",
    sasl_password="alice-S3cret",
)

# SCRAM-SHA-256 or SCRAM-SHA-512: the password never crosses the wire.
scram = ConsumerConfig(
    bootstrap_servers=BROKERS,
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="bob",
    sasl_password=Secret("bob-S3cret"),  # a plain str is wrapped in Secret for you
    group_id="billing",
)


# OAUTHBEARER: a provider returns the token (str, Secret or OAuthBearerToken). It is called
# for every new connection and for every re-authentication (KIP-368), so return a fresh token.
def token_provider() -> OAuthBearerToken:
    token = f"eyJ.token-issued-at-{int(time.time())}"  # fetch it from your identity provider
    return OAuthBearerToken(Secret(token), extensions={"logicalCluster": "lkc-1"})


async def async_token_provider() -> str:  # async providers are awaited on the client's loop
    return "eyJ.token-from-an-async-http-client"


oauth = ProducerConfig(
    bootstrap_servers=BROKERS,
    security_protocol="SASL_SSL",
    sasl_mechanism="OAUTHBEARER",
    sasl_oauthbearer_token_provider=token_provider,
)
oauth_async = oauth.evolve(sasl_oauthbearer_token_provider=async_token_provider)

print(f"plain: {plain.sasl_mechanism} as {plain.sasl_username}, password {plain.sasl_password!r}")
print(f"scram: {scram.sasl_mechanism} as {scram.sasl_username}, password {scram.sasl_password!r}")
for config in (oauth, oauth_async):
    provider = config.sasl_oauthbearer_token_provider
    print(f"oauth: {config.sasl_mechanism} with {provider.__name__}")

# Credentials never show in repr, str or logs: only '***'.
assert "S3cret" not in repr(plain) + str(plain) + repr(scram)
print(f"repr shows {plain.sasl_password!r}, str shows {plain.sasl_password}")

# Missing pieces are caught when the config is built.
try:
    ProducerConfig(bootstrap_servers=BROKERS, security_protocol="SASL_SSL", sasl_username="x")
except ConfigError as exc:
    print(f"ConfigError: {exc}")
