// Written out by hand instead of using `Float16`, which is missing on some
// platforms Swift targets (Intel macOS); these are exact.

/// IEEE 754 binary16 bits to float32, exact (including subnormals, inf, NaN payloads).
@inline(__always)
func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    var mantissa = UInt32(h) & 0x3FF
    if exponent == 0x1F {
        // Inf or NaN: keep the payload in the top mantissa bits.
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal half: normalise into a float32 exponent.
        var e: UInt32 = 127 - 15 + 1
        while mantissa & 0x400 == 0 {
            mantissa <<= 1
            e -= 1
        }
        mantissa &= 0x3FF
        return Float(bitPattern: sign | (e << 23) | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
}

/// float32 to binary16 bits, rounding to nearest even (as PyTorch's `.half()` does).
func halfBitsFromFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    let mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF {
        // Inf stays inf; NaN stays a (quiet) NaN.
        return sign | 0x7C00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0)
    }
    let halfExponent = exponent - 127 + 15
    if halfExponent >= 0x1F { return sign | 0x7C00 }  // overflow to inf
    if halfExponent <= 0 {
        // Subnormal half (or zero): shift the implicit-one mantissa into place.
        if halfExponent < -10 { return sign }
        let full = mantissa | 0x80_0000
        let shift = UInt32(14 - halfExponent)
        var result = full >> shift
        let remainder = full & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if remainder > halfway || (remainder == halfway && result & 1 == 1) { result += 1 }
        return sign | UInt16(result)
    }
    var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
    let remainder = mantissa & 0x1FFF
    if remainder > 0x1000 || (remainder == 0x1000 && result & 1 == 1) { result += 1 }  // may carry into inf, as it should
    return sign | UInt16(result)
}

/// bfloat16 bits to float32: bfloat16 is the top half of a float32.
@inline(__always)
func floatFromBFloat16Bits(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// float32 to bfloat16 bits, rounding to nearest even (as PyTorch does); NaN stays NaN.
func bfloat16BitsFromFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if f.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
