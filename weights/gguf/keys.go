package gguf

// Standard metadata keys (ggml docs/gguf.md, llama.cpp's llama-arch.cpp):
// the general.* keys every model file carries and the tokenizer.ggml.* keys
// of an embedded tokenizer. Writers and readers in this repository spell
// them through these names only.
const (
	KeyArchitecture        = "general.architecture"
	KeyType                = "general.type" // "model"
	KeyName                = "general.name"
	KeySizeLabel           = "general.size_label" // "2.7B", "250M"
	KeyFileType            = "general.file_type"  // enum llama_ftype
	KeyQuantizationVersion = "general.quantization_version"

	KeyTokenizerModel         = "tokenizer.ggml.model" // "llama", "t5", "gpt2"
	KeyTokenizerPre           = "tokenizer.ggml.pre"   // pre-tokenizer: "default", "gpt-2"
	KeyTokens                 = "tokenizer.ggml.tokens"
	KeyScores                 = "tokenizer.ggml.scores"
	KeyTokenType              = "tokenizer.ggml.token_type" // one TokenType per token
	KeyMerges                 = "tokenizer.ggml.merges"     // BPE merges, "a b" in rank order
	KeyBOSID                  = "tokenizer.ggml.bos_token_id"
	KeyEOSID                  = "tokenizer.ggml.eos_token_id"
	KeyUnknownID              = "tokenizer.ggml.unknown_token_id"
	KeyPaddingID              = "tokenizer.ggml.padding_token_id"
	KeyAddBOS                 = "tokenizer.ggml.add_bos_token"
	KeyAddEOS                 = "tokenizer.ggml.add_eos_token"
	KeyAddSpacePrefix         = "tokenizer.ggml.add_space_prefix"
	KeyRemoveExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces"
	KeyPrecompiledCharsmap    = "tokenizer.ggml.precompiled_charsmap"
)

// TokenType is a value of tokenizer.ggml.token_type (enum
// llama_token_type); SentencePiece piece types use the same numbers.
type TokenType = int32

// Token types.
const (
	TokenNormal      TokenType = 1
	TokenUnknown     TokenType = 2
	TokenControl     TokenType = 3 // special: </s>, <pad>; not shown as text
	TokenUserDefined TokenType = 4 // added tokens
	TokenUnused      TokenType = 5 // padding up to the vocabulary size
	TokenByte        TokenType = 6 // <0x00>..<0xFF>
)
