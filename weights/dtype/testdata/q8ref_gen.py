import random, struct, sys
r = random.Random(20240611)
def f32(x): return struct.unpack('<f', struct.pack('<f', x))[0]
blocks = []
# hand-shaped blocks
blocks.append([127,2.5,-2.5,0.5,-0.5,1.5,-1.5]+[0]*25)
blocks.append([j-16 for j in range(32)])
blocks.append([0.0]*32)
blocks.append([-3.0]+[1.0]*31)          # amax from a negative value
blocks.append([1e7]+[r.uniform(-1e7,1e7) for _ in range(31)])   # d overflows f16
blocks.append([r.uniform(-1e-36,1e-36) for _ in range(32)])      # d subnormal f32
blocks.append([r.uniform(-6e-6,6e-6) for _ in range(32)])        # d subnormal f16
blocks.append([k*0.5 for k in range(-16,16)])                    # many ties
for scale in [1e-4, 1e-2, 0.05, 1, 3, 100, 1e4]:
    for _ in range(40):
        kind = r.random()
        if kind < 0.5:
            blocks.append([r.gauss(0, scale) for _ in range(32)])
        elif kind < 0.8:
            blocks.append([r.uniform(-scale, scale) for _ in range(32)])
        else:
            # values on a grid of amax/127 * (k+0.5): exercises roundf ties
            a = scale*r.uniform(0.5,2)
            blocks.append([a] + [a/127*(r.randint(-127,126)+0.5) for _ in range(31)])
vals = [f32(v) for b in blocks for v in b]
sys.stdout.buffer.write(struct.pack('<%df' % len(vals), *vals))
