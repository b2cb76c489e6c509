"""An independent Modbus TCP server (pymodbus) holding the SPEC register maps, written by hand
from the product contract (SPEC section 4), so dustgate's drivers are checked against a peer nobody here wrote.

usage: /usr/bin/python3 test/peers/pymodbus_server.py PORT
  unit 1  cwt-weather-station  holding 0x01F4..0x01FD
  unit 2  xy-md02              input   0x0001..0x0002
  unit 3  waveshare-relay-8ch  coils   0x0000..0x0007
  unit 4  waveshare-di-8ch     discrete inputs 0x0000..0x0007
"""
import sys
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext

port = int(sys.argv[1])

def empty():
    return ModbusSequentialDataBlock(0, [0] * 1024)

# cwt-weather-station: 3.41 m/s, level 3, (0x01F6 unused), 271 deg, 45.5 %RH, -3.5 C, 62.3 dB, 35, 180 ug/m3, 100.8 kPa
hr = ModbusSequentialDataBlock(0, [0] * 1024)
hr.setValues(0x01F4, [341, 3, 0, 271, 455, 0x10000 - 35, 623, 35, 180, 1008])
cwt = ModbusSlaveContext(di=empty(), co=empty(), hr=hr, ir=empty(), zero_mode=True)

ir = ModbusSequentialDataBlock(0, [0] * 16)
ir.setValues(0x0001, [273, 626])  # 27.3 C, 62.6 %RH
xy = ModbusSlaveContext(di=empty(), co=empty(), hr=empty(), ir=ir, zero_mode=True)

relay = ModbusSlaveContext(di=empty(), co=ModbusSequentialDataBlock(0, [0] * 8), hr=empty(), ir=empty(), zero_mode=True)

di = ModbusSequentialDataBlock(0, [1, 0, 1, 0, 0, 0, 0, 1])
dio = ModbusSlaveContext(di=di, co=empty(), hr=empty(), ir=empty(), zero_mode=True)

context = ModbusServerContext(slaves={1: cwt, 2: xy, 3: relay, 4: dio}, single=False)
print("pymodbus server listening on", port, flush=True)
StartTcpServer(context=context, address=("127.0.0.1", port))
