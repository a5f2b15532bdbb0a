// NEON instructions the Go arm64 assembler does not know, encoded by hand.
// Operands are register numbers in the A64 order (destination first);
// every vector form is the 128-bit one (.4S, .16B, .8H; FCVTL, SMULL,
// SMLAL, SSHLL and XTN take the low half, their "2" forms the high half).

#define VOP3(op, d, n, m) WORD $((op) | ((m)<<16) | ((n)<<5) | (d))
#define VOP2(op, d, n) WORD $((op) | ((n)<<5) | (d))
// by-element forms: Vm.S[i] (FMUL, FMLA) or Vm.4B[i] (SDOT), m in 0..31
#define VOPE(op, d, n, m, i) WORD $((op) | (((i)&1)<<21) | (((m)>>4)<<20) | (((m)&15)<<16) | (((i)>>1)<<11) | ((n)<<5) | (d))

#define FADD4S(d, n, m)  VOP3(0x4E20D400, d, n, m)
#define FSUB4S(d, n, m)  VOP3(0x4EA0D400, d, n, m)
#define FMUL4S(d, n, m)  VOP3(0x6E20DC00, d, n, m)
#define FDIV4S(d, n, m)  VOP3(0x6E20FC00, d, n, m)
#define FMAX4S(d, n, m)  VOP3(0x4E20F400, d, n, m)
#define FMAXNM4S(d, n, m) VOP3(0x4E20C400, d, n, m)
#define FMLA4S(d, n, m)  VOP3(0x4E20CC00, d, n, m)
#define FMLS4S(d, n, m)  VOP3(0x4EA0CC00, d, n, m)
#define FADDP4S(d, n, m) VOP3(0x6E20D400, d, n, m)
#define FMAXP4S(d, n, m) VOP3(0x6E20F400, d, n, m)
#define FCMGT4S(d, n, m) VOP3(0x6EA0E400, d, n, m)
#define SMAX4S(d, n, m)  VOP3(0x4EA06400, d, n, m)
#define SMIN4S(d, n, m)  VOP3(0x4EA06C00, d, n, m)
#define SMMLA(d, n, m)   VOP3(0x4E80A400, d, n, m)
#define SDOT(d, n, m)    VOP3(0x4E809400, d, n, m)
#define SMULL(d, n, m)   VOP3(0x0E20C000, d, n, m)
#define SMULL2(d, n, m)  VOP3(0x4E20C000, d, n, m)
#define SMLAL(d, n, m)   VOP3(0x0E208000, d, n, m)
#define SMLAL2(d, n, m)  VOP3(0x4E208000, d, n, m)

#define FMLAE(d, n, m, i) VOPE(0x4F801000, d, n, m, i)
#define FMULE(d, n, m, i) VOPE(0x4F809000, d, n, m, i)
#define SDOTE(d, n, m, i) VOPE(0x4F80E000, d, n, m, i)

#define SCVTF4S(d, n)   VOP2(0x4E21D800, d, n)
#define FCVTL(d, n)     VOP2(0x0E217800, d, n)
#define FCVTL2(d, n)    VOP2(0x4E217800, d, n)
#define FABS4S(d, n)    VOP2(0x4EA0F800, d, n)
#define FNEG4S(d, n)    VOP2(0x6EA0F800, d, n)
#define FRINTN4S(d, n)  VOP2(0x4E218800, d, n)
#define FCVTNS4S(d, n)  VOP2(0x4E21A800, d, n)
#define FCVTAS4S(d, n)  VOP2(0x4E21C800, d, n)
#define FCMLTZ4S(d, n)  VOP2(0x4EA0E800, d, n)
#define SADALP8H(d, n)  VOP2(0x4E606800, d, n)
#define SXTL8H(d, n)    VOP2(0x0F08A400, d, n)
#define SXTL2_8H(d, n)  VOP2(0x4F08A400, d, n)
#define SXTL4S(d, n)    VOP2(0x0F10A400, d, n)
#define SXTL2_4S(d, n)  VOP2(0x4F10A400, d, n)
#define XTN4H(d, n)     VOP2(0x0E612800, d, n)
#define XTN2_8H(d, n)   VOP2(0x4E612800, d, n)
#define XTN8B(d, n)     VOP2(0x0E212800, d, n)
#define XTN2_16B(d, n)  VOP2(0x4E212800, d, n)
// scalar: Sd = f32(Hn)
#define FCVTSH(d, n)    VOP2(0x1EE24000, d, n)
#define SADDLP8H(d, n)  VOP2(0x4E602800, d, n)
// SSHR Vd.4S, Vn.4S, #31: the sign of each lane as a mask
#define SIGNMASK4S(d, n) VOP2(0x4F210400, d, n)
#define MOV16B(d, n)     VOP3(0x4EA01C00, d, n, n)
#define ADD4S(d, n, m)   VOP3(0x4EA08400, d, n, m)
// BSL: Vd = Vd ? Vn : Vm, bit by bit
#define BSL16B(d, n, m)  VOP3(0x6E601C00, d, n, m)
// SHL Vd.4S, Vn.4S, #23: an integer into the f32 exponent field
#define SHL23_4S(d, n)   VOP2(0x4F375400, d, n)
