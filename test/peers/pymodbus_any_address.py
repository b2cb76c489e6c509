"""An independent Modbus TCP server (pymodbus) whose units answer EVERY address of every read
function (01-04), with zeros outside their own map, as many cheap RS-485 sensors do. Written by
hand from the product contract (SPEC section 4) and the vendors' manuals, for the bus scan.

usage: /usr/bin/python3 test/peers/pymodbus_any_address.py PORT
  unit 1  cwt-weather-station  holding 0x01F4..0x01FD, live values
  unit 2  xy-md02              input   0x0001..0x0002
  unit 3  waveshare-relay-8ch  coils   0x0000..0x0007 (all off); holding 0x4000 = 3 (its address), 0x8000 = 0x00C8 (V2.00)
  unit 4  waveshare-di-8ch     discrete inputs 0x0000..0x0007; holding 0x4000 = 4, 0x8000 = 0x00C8
  unit 5  dust-transmitter     holding 0x0000..0x0002 (PM2.5, PM10, TSP)
  unit 6  a device no driver knows: zeros everywhere
  unit 7  a device no driver knows: holding 0x0100..0x0103 = 1, 2, 3, 4 (zeros elsewhere)
"""
import sys
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext

port = int(sys.argv[1])
SPAN = 0x10000  # every address


def table(values=None):
    block = ModbusSequentialDataBlock(0, [0] * SPAN)
    for address, words in (values or {}).items():
        block.setValues(address, words)
    return block


def unit(co=None, di=None, hr=None, ir=None):
    return ModbusSlaveContext(co=table(co), di=table(di), hr=table(hr), ir=table(ir), zero_mode=True)


units = {
    # 3.41 m/s, level 3, (0x01F6 unused), 271 deg, 45.5 %RH, -3.5 C, 62.3 dB, PM2.5 35, PM10 180, 100.8 kPa
    1: unit(hr={0x01F4: [341, 3, 0, 271, 455, 0x10000 - 35, 623, 35, 180, 1008]}),
    2: unit(ir={0x0001: [273, 626]}),  # 27.3 C, 62.6 %RH
    3: unit(hr={0x4000: [3], 0x8000: [0x00C8]}),
    4: unit(di={0x0000: [1, 0, 1, 0, 0, 0, 0, 1]}, hr={0x4000: [4], 0x8000: [0x00C8]}),
    5: unit(hr={0x0000: [42, 96, 150]}),  # PM2.5 42, PM10 96, TSP 150 ug/m3
    6: unit(),
    7: unit(hr={0x0100: [1, 2, 3, 4]}),
}
context = ModbusServerContext(slaves=units, single=False)
print("pymodbus any-address server listening on", port, flush=True)
StartTcpServer(context=context, address=("127.0.0.1", port))
