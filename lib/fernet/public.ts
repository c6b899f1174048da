// The `fastify-encrypted-session/fernet` entry: the Fernet API the README documents, and nothing
// of what the plugin uses inside (the symbols behind a token's parts, the clock, key decoding).
export { DEFAULT_MAX_TOKEN_LENGTH, Fernet, FernetBase, InvalidToken, MAX_CLOCK_SKEW, MultiFernet, deriveKey } from './fernet.js'
export type { DecryptOptions, DecryptedToken, DeriveKeyOptions, FernetKey, FernetOptions, InvalidTokenReason } from './fernet.js'
