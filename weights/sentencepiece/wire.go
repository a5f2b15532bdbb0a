package sentencepiece

import (
	"encoding/binary"
	"fmt"
)

// Protocol buffer wire types.
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireSGroup = 3 // deprecated groups: refused
	wireEGroup = 4
	wireI32    = 5
)

var wireNames = [...]string{"varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit", "6", "7"}

// decoder reads protobuf wire format from b; base is b's offset in the file
// so errors point at the right byte. Every read is bounds-checked.
type decoder struct {
	b    []byte
	off  int
	base int
}

func (d *decoder) done() bool { return d.off >= len(d.b) }

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.base+d.off, fmt.Sprintf(format, args...))
}

func (d *decoder) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if d.off >= len(d.b) {
			return 0, d.errorf("truncated varint")
		}
		c := d.b[d.off]
		d.off++
		// The 10th byte may only hold the top bit of a 64-bit value.
		if i == 9 && c > 1 {
			return 0, d.errorf("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, d.errorf("varint longer than 10 bytes")
}

// key reads a field tag.
func (d *decoder) key() (field, wire int, err error) {
	start := d.off
	k, err := d.varint()
	if err != nil {
		return 0, 0, err
	}
	field, wire = int(k>>3), int(k&7)
	if k>>3 == 0 || k>>3 > 1<<29-1 {
		d.off = start
		return 0, 0, d.errorf("invalid field number %d", k>>3)
	}
	return field, wire, nil
}

// bytes reads a length-delimited payload; the result aliases d.b.
func (d *decoder) bytes() ([]byte, int, error) {
	n, err := d.varint()
	if err != nil {
		return nil, 0, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, 0, d.errorf("length %d runs past the end (%d bytes left)", n, len(d.b)-d.off)
	}
	start := d.off
	d.off += int(n)
	return d.b[start:d.off], d.base + start, nil
}

func (d *decoder) fixed32() (uint32, error) {
	if len(d.b)-d.off < 4 {
		return 0, d.errorf("truncated 32-bit value")
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *decoder) fixed64() (uint64, error) {
	if len(d.b)-d.off < 8 {
		return 0, d.errorf("truncated 64-bit value")
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

// skip passes over the value of a field this package does not read.
func (d *decoder) skip(wire int) error {
	var err error
	switch wire {
	case wireVarint:
		_, err = d.varint()
	case wireI64:
		_, err = d.fixed64()
	case wireLen:
		_, _, err = d.bytes()
	case wireI32:
		_, err = d.fixed32()
	default:
		err = d.errorf("unsupported wire type %s", wireNames[wire])
	}
	return err
}

// expect checks that a known field has the wire type its declaration needs.
func (d *decoder) expect(name string, wire, want int) error {
	if wire != want {
		return d.errorf("%s: wire type %s, want %s", name, wireNames[wire], wireNames[want])
	}
	return nil
}

// int32 reads a varint as proto int32/enum: the low 32 bits, so negative
// values (sign-extended to 10 bytes by encoders) come back negative.
func (d *decoder) int32(name string, wire int) (int, error) {
	if err := d.expect(name, wire, wireVarint); err != nil {
		return 0, err
	}
	v, err := d.varint()
	return int(int32(uint32(v))), err
}

func (d *decoder) bool(name string, wire int) (bool, error) {
	if err := d.expect(name, wire, wireVarint); err != nil {
		return false, err
	}
	v, err := d.varint()
	return v != 0, err
}

func (d *decoder) string(name string, wire int) (string, error) {
	if err := d.expect(name, wire, wireLen); err != nil {
		return "", err
	}
	b, _, err := d.bytes()
	return string(b), err
}

// message reads an embedded message and returns a decoder over it.
func (d *decoder) message(name string, wire int) (decoder, error) {
	if err := d.expect(name, wire, wireLen); err != nil {
		return decoder{}, err
	}
	b, base, err := d.bytes()
	return decoder{b: b, base: base}, err
}
