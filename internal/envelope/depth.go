package envelope

// MaxDepth is the deepest nesting of JSON arrays and objects accepted in a
// body. Real payloads are shallow: a Stripe event is about 8 levels deep
// (event, data, object, then nested lists such as line items), a GitHub
// push about 6, Slack and Shopify fewer. 64 leaves a wide margin for any
// honest sender, while a body of 100,000 '[' would make every recursive
// JSON parser downstream (the worker's handlers, gjson's validator) use a
// stack frame per level.
const MaxDepth = 64

// Depth returns how deeply body's arrays and objects nest, counting only
// brackets and braces outside JSON strings, and stops early at the byte
// offset where the nesting first exceeds limit. It returns (depth, -1) when
// the body never goes deeper than limit, and (limit+1, offset) otherwise.
//
// It is a single iterative pass over the raw bytes, with no recursion and
// no allocation, so it is safe to run on any body before a parser sees it.
// It does not validate JSON: closing brackets that do not match, or that
// close more than was opened, only lower the count (never below zero), and
// the parser that runs afterwards refuses such bodies.
func Depth(body []byte, limit int) (depth, offset int) {
	cur := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			// Strings are skipped whole: their brackets do not count.
			i = stringEnd(body, i)
		case '[', '{':
			cur++
			if cur > depth {
				depth = cur
				if depth > limit {
					return depth, i
				}
			}
		case ']', '}':
			if cur > 0 {
				cur--
			}
		}
	}
	return depth, -1
}
