package escrow

// Domain-separation labels. Each names the protocol version, so a value
// computed for one purpose can never be accepted for another.
const (
	labelEnvelopeR     = "keyquorum/v1/envelope/r"
	labelWrap          = "keyquorum/v1/wrap"
	labelEnvelopeNonce = "keyquorum/v1/envelope/proof-nonce"
	labelEnvelopeProof = "keyquorum/v1/envelope/proof"
	labelDLEQ          = "keyquorum/v1/partial/dleq"
	labelDLEQNonce     = "keyquorum/v1/partial/dleq-nonce"
	labelRequestSig    = "keyquorum/v1/request/signature"
	labelRequestNonce  = "keyquorum/v1/request/signature-nonce"
	labelSessionHPKE   = "keyquorum/v1/session/key"
	labelMessageKey    = "keyquorum/v1/session/messages"
	labelMessageSig    = "keyquorum/v1/session/message-signature"
)
