import { metricUnits } from './metrics.js';

/** The installer's status page: one HTML file, polling /api/state; uPlot draws the last hour. */
export function statusPage(gatewayId: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dustgate ${esc(gatewayId)}</title>
<link rel="stylesheet" href="uplot.css">
<style>
 body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}
 header{background:#1d2430;color:#fff;padding:.6rem 1rem;display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:.5rem}
 header h1{font-size:1.1rem;margin:0} header span{font-size:.85rem;opacity:.8}
 main{padding:.75rem;display:grid;gap:.75rem;grid-template-columns:repeat(auto-fit,minmax(280px,1fr))}
 section{background:#fff;border-radius:8px;padding:.75rem;box-shadow:0 1px 2px #0002}
 h2{font-size:.95rem;margin:0 0 .5rem}
 .tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:.5rem}
 .tile{border-radius:6px;padding:.5rem;background:#eef1f5} .tile b{display:block;font-size:1.3rem}
 .ok{background:#dcf5e3}.bad{background:#fde2e1}.warn{background:#fff1cc}
 table{width:100%;border-collapse:collapse;font-size:.85rem} td,th{padding:.25rem;border-bottom:1px solid #eee;text-align:left}
 #chart{width:100%} .wide{grid-column:1/-1} small{color:#667}
</style></head><body>
<header><h1>dustgate · <span id="gw">${esc(gatewayId)}</span></h1><span id="links">connecting…</span></header>
<main>
 <section><h2>Rules</h2><div class="tiles">
  <div class="tile" id="sprinkling"><small>Sprinkling</small><b>…</b><small class="why"></small></div>
  <div class="tile" id="sweeping"><small>Sweeping</small><b>…</b><small class="why"></small></div>
  <div class="tile" id="alarms"><small>Dust alarms</small><b>…</b><small class="why"></small></div>
  <div class="tile" id="alert"><small>Alert level</small><b>…</b></div>
 </div></section>
 <section><h2>Values</h2><div class="tiles" id="values"></div></section>
 <section class="wide"><h2>Last hour</h2><div id="chart"></div></section>
 <section><h2>Outputs</h2><table id="outputs"></table></section>
 <section><h2>Devices</h2><table id="devices"></table></section>
 <section><h2>Buffer and links</h2><table id="buffer"></table></section>
</main>
<script src="uplot.js"></script>
<script>
const token = new URLSearchParams(location.search).get('token');
const q = (p) => p + (token ? (p.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : '');
const units = ${JSON.stringify(metricUnits()).replace(/</g, '\\u003c')};
let plot;
function tile(id, text, cls, why){const t=document.getElementById(id);t.className='tile '+(cls||'');t.querySelector('b').textContent=text;const w=t.querySelector('.why');if(w)w.textContent=why||'';}
function rows(id, head, list){document.getElementById(id).innerHTML='<tr>'+head.map(h=>'<th>'+h+'</th>').join('')+'</tr>'+list.map(r=>'<tr>'+r.map(c=>'<td>'+c+'</td>').join('')+'</tr>').join('');}
function draw(h){
  const series=[['pm10','#c0392b'],['pm25','#8e44ad'],['temperature','#2980b9'],['windSpeed','#16a085']].filter(([m])=>h[m]&&h[m].length);
  if(!series.length)return;
  const ts=[...new Set(series.flatMap(([m])=>h[m].map(p=>p[0])))].sort((a,b)=>a-b);
  const data=[ts.map(t=>t/1000),...series.map(([m])=>{const mp=new Map(h[m]);return ts.map(t=>mp.has(t)?mp.get(t):null);})];
  const opts={width:document.getElementById('chart').clientWidth||320,height:220,series:[{},...series.map(([m,c])=>({label:m+' '+units[m],stroke:c,spanGaps:true}))]};
  if(plot&&plot.series.length===data.length){plot.setData(data);}else{if(plot)plot.destroy();plot=new uPlot(opts,data,document.getElementById('chart'));}
}
async function refresh(){
  try{
    const r=await fetch(q('api/state?history'));if(!r.ok)throw new Error(r.status+' '+(await r.text()));
    const s=await r.json();const st=s.state;
    document.getElementById('links').textContent='broker '+(s.links.mqtt??'off')+' · HJ 212 '+(s.links.hj212??'off')+' · config v'+s.configVersion+' · '+new Date(s.now).toLocaleTimeString();
    const sp=st.sprinkling;tile('sprinkling',sp.allowed?(sp.on?'allowed · ON':'allowed'):'blocked',sp.allowed?'ok':'bad',sp.allowed?'':(sp.reason+(sp.temperature!=null?' ('+sp.temperature+' °C)':'')));
    const sw=st.sweeping;tile('sweeping',sw.allowed?'allowed':'stopped',sw.allowed?'ok':'bad','Beaufort '+(sw.beaufort??'-')+(sw.windMean!=null?' · '+sw.windMean+' m/s':''));
    const al=Object.entries(st.alarms).filter(([,v])=>v!=='none');tile('alarms',al.length?al.map(([k,v])=>k+' '+v).join(', '):'none',al.length?'bad':'ok','');
    tile('alert',st.alertLevel,st.alertLevel==='none'?'ok':'warn','');
    document.getElementById('values').innerHTML=Object.entries(s.latest).map(([m,x])=>'<div class="tile '+(x.flag==='N'?'':'warn')+'"><small>'+m+'</small><b>'+x.v+'</b><small>'+(units[m]||'')+' · '+x.flag+'</small></div>').join('');
    rows('outputs',['output','state'],Object.entries(st.outputs).map(([k,v])=>[k,v]));
    rows('devices',['device','status','ok','timeouts','CRC','last error','rtt'],Object.entries(s.devices).map(([k,d])=>[k,d.status,d.counters.ok,d.counters.timeouts,d.counters.crcErrors,d.counters.lastError?d.counters.lastError.code:'',d.counters.lastRttMs!=null?d.counters.lastRttMs+' ms':'']));
    rows('buffer',['',''],[['storage',s.storage.state==='ok'?'ok':'FAILING: '+s.storage.code+' since '+new Date(s.storage.since).toLocaleTimeString()+' ('+s.storage.droppedTelemetry+' readings not stored; rules still run)'],['records',s.buffer.telemetry+s.buffer.events],['oldest',s.buffer.oldestAgeS!=null?s.buffer.oldestAgeS+' s':'-'],['evicted',s.buffer.evicted.telemetry+s.buffer.evicted.events],['broker',s.links.mqtt??'off'],['HJ 212',s.links.hj212??'off'],...(s.light?[['status light',{on:'steady',slow:'slow blink',fast:'fast blink',off:'off'}[s.light]]]:[])]);
    draw(s.history||{});
  }catch(e){document.getElementById('links').textContent='no answer: '+e.message;}
}
refresh();setInterval(refresh,2000);
</script></body></html>`;
}
