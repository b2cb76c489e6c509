import { catalog, LOCALES, type Locale } from './i18n.js';
import { metricUnits } from './metrics.js';

/** The catalog entries the page's script needs (labels, states, metric names and units). */
const PAGE_GROUPS = ['page.', 'dur.', 'metric.', 'unit.', 'flag.', 'status.', 'link.', 'light.', 'onoff.', 'level.', 'alert.'];

/**
 * The installer's status page: one HTML file in the page's language (`?lang=`, else gateway.locale),
 * polling /api/state (whose `explain`, `events` and `display` come in the same language and the
 * site's time zone); uPlot draws the last hour. Laid out for a 360 px phone first.
 */
export function statusPage(gatewayId: string, locale: Locale): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  const all = catalog(locale);
  const L = Object.fromEntries(Object.entries(all).filter(([k]) => PAGE_GROUPS.some((g) => k.startsWith(g))));
  const tx = (k: string) => esc(all[k] ?? k);
  const other = LOCALES.find((l) => l !== locale)!;
  const json = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${tx('page.title')} ${esc(gatewayId)}</title>
<link rel="stylesheet" href="uplot.css">
<style>
 *{box-sizing:border-box}
 body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;margin:0;background:#f4f5f7;color:#1d2430;font-size:15px;line-height:1.4}
 header{background:#1d2430;color:#fff;padding:.5rem .75rem;display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:.25rem .75rem}
 header h1{font-size:1.05rem;margin:0} header span{font-size:.8rem;opacity:.85} header a{color:#9cf;font-size:.85rem}
 main{padding:.5rem;display:grid;gap:.5rem;grid-template-columns:repeat(auto-fit,minmax(300px,1fr))}
 section{background:#fff;border-radius:8px;padding:.6rem;box-shadow:0 1px 2px #0002;min-width:0}
 h2{font-size:.95rem;margin:0 0 .4rem}
 .rule{border-radius:6px;padding:.4rem .5rem;margin:.3rem 0;background:#eef1f5}
 .rule .name{font-size:.8rem;color:#556} .rule b{margin-left:.4rem} .rule p{margin:.15rem 0 0;font-size:.9rem}
 .tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(100px,1fr));gap:.4rem}
 .tile{border-radius:6px;padding:.4rem;background:#eef1f5;min-width:0} .tile b{display:block;font-size:1.25rem} .tile small{display:block;overflow-wrap:anywhere}
 .ok{background:#dcf5e3}.bad{background:#fde2e1}.warn{background:#fff1cc}
 .scroll{overflow-x:auto}
 table{width:100%;border-collapse:collapse;font-size:.85rem} td,th{padding:.25rem;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
 #events li{font-size:.85rem;margin:.15rem 0} #events{padding-left:1.1rem;margin:0}
 #chart{width:100%;overflow:hidden} .wide{grid-column:1/-1} small{color:#667}
</style></head><body>
<header><h1>${tx('page.title')} · <span id="gw">${esc(gatewayId)}</span></h1><a id="lang" href="?lang=${other}">${tx('page.otherLang')}</a><span id="links">${tx('page.connecting')}</span></header>
<main>
 <section><h2>${tx('page.rules')}</h2>
  <div class="rule" id="sprinkling"><span class="name">${tx('page.sprinkling')}</span><b>…</b><p class="why"></p></div>
  <div class="rule" id="sweeping"><span class="name">${tx('page.sweeping')}</span><b>…</b><p class="why"></p></div>
  <div class="rule" id="alarms"><span class="name">${tx('page.alarms')}</span><b>…</b><p class="why"></p></div>
  <div class="rule" id="earthwork"><span class="name">${tx('page.earthwork')}</span><b>…</b><p class="why"></p></div>
  <div class="rule" id="alert"><span class="name">${tx('page.alert')}</span><b>…</b><p class="why"></p></div>
 </section>
 <section><h2>${tx('page.values')}</h2><div class="tiles" id="values"></div></section>
 <section class="wide"><h2>${tx('page.lastHour')}</h2><div id="chart"></div></section>
 <section><h2>${tx('page.events')}</h2><ul id="events"></ul></section>
 <section><h2>${tx('page.outputs')}</h2><div class="scroll"><table id="outputs"></table></div></section>
 <section><h2>${tx('page.devices')}</h2><div class="scroll"><table id="devices"></table></div></section>
 <section><h2>${tx('page.buffer')}</h2><div class="scroll"><table id="buffer"></table></div></section>
</main>
<script src="uplot.js"></script>
<script>
const LOCALE = ${json(locale)};
const L = ${json(L)};
const catalogUnits = ${json(metricUnits())};
const params = new URLSearchParams(location.search);
const token = params.get('token');
const q = (p) => p + (p.includes('?') ? '&' : '?') + 'lang=' + LOCALE + (token ? '&token=' + encodeURIComponent(token) : '');
document.getElementById('lang').href = '?lang=${other}' + (token ? '&token=' + encodeURIComponent(token) : '');
const tr = (k, p) => (L[k] ?? k).replace(/\\{\\{\\s*(\\w+)\\s*\\}\\}/g, (_, n) => (p && p[n] != null ? p[n] : '–'));
const word = (group, v) => L[group + '.' + v] ?? String(v);
const num = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 2 });
const metric = (m) => L['metric.' + m] ?? m;
const unit = (m) => L['unit.' + m] ?? catalogUnits[m] ?? '';
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
let plot;
function rule(id, text, cls, why){const t=document.getElementById(id);t.className='rule '+(cls||'');t.querySelector('b').textContent=text;t.querySelector('.why').textContent=why||'';}
function rows(id, head, list){document.getElementById(id).innerHTML='<tr>'+head.map(h=>'<th>'+esc(h)+'</th>').join('')+'</tr>'+list.map(r=>'<tr>'+r.map(c=>'<td>'+esc(c)+'</td>').join('')+'</tr>').join('');}
let hm;
function draw(h, timeZone){
  // the time axis in the site's zone and the page's language (24 h)
  if(!hm)hm=new Intl.DateTimeFormat(LOCALE,{timeZone,hour:'2-digit',minute:'2-digit',hourCycle:'h23'});
  const series=[['pm10','#c0392b'],['pm25','#8e44ad'],['temperature','#2980b9'],['windSpeed','#16a085']].filter(([m])=>h[m]&&h[m].length);
  if(!series.length)return;
  const ts=[...new Set(series.flatMap(([m])=>h[m].map(p=>p[0])))].sort((a,b)=>a-b);
  const data=[ts.map(t=>t/1000),...series.map(([m])=>{const mp=new Map(h[m]);return ts.map(t=>mp.has(t)?mp.get(t):null);})];
  const opts={width:document.getElementById('chart').clientWidth||320,height:200,axes:[{values:(u,splits)=>splits.map(v=>hm.format(v*1000))},{}],series:[{label:L['page.time'],value:(u,v)=>v==null?'--':hm.format(v*1000)},...series.map(([m,c])=>({label:metric(m)+' '+unit(m),stroke:c,spanGaps:true}))]};
  if(plot&&plot.series.length===data.length){plot.setData(data);}else{if(plot)plot.destroy();plot=new uPlot(opts,data,document.getElementById('chart'));}
}
async function refresh(){
  try{
    const r=await fetch(q('api/state?history'));if(!r.ok)throw new Error(r.status+' '+(await r.text()));
    const s=await r.json();const st=s.state;const x=s.explain;
    document.getElementById('links').textContent=tr('page.header',{mqtt:word('link',s.links.mqtt??'off'),hj212:word('link',s.links.hj212??'off'),version:s.configVersion,time:s.display.now});
    const sp=st.sprinkling;rule('sprinkling',sp.allowed?(sp.on?L['page.allowedOn']:L['page.allowed']):L['page.blocked'],sp.allowed?'ok':'bad',x.sprinkling);
    const sw=st.sweeping;rule('sweeping',sw.allowed?L['page.allowed']:L['page.stopped'],sw.allowed?'ok':'bad',x.sweeping);
    const al=x.alarms.filter(a=>a.level!=='none');rule('alarms',al.length?al.map(a=>metric(a.metric)+' '+word('level',a.level)).join(L['page.listSep']):L['page.noAlarm'],al.length?'bad':'ok',x.alarms.map(a=>a.text).join(L['page.sentenceSep']));
    rule('earthwork',x.earthwork.banned?L['page.banned']:L['page.notBanned'],x.earthwork.banned?'warn':'ok',x.earthwork.text);
    rule('alert',word('alert',st.alertLevel),st.alertLevel==='none'?'ok':'warn',x.alert);
    document.getElementById('values').innerHTML=Object.entries(s.latest).map(([m,v])=>'<div class="tile '+(v.flag==='N'?'':'warn')+'" data-metric="'+esc(m)+'"><small>'+esc(metric(m))+'</small><b>'+esc(num.format(v.v))+'</b><small>'+esc(unit(m))+' · '+esc(word('flag',v.flag))+'</small></div>').join('');
    document.getElementById('events').innerHTML=s.events.slice(0,8).map(e=>'<li><small>'+esc(e.time)+'</small> '+esc(e.text)+'</li>').join('');
    rows('outputs',[L['page.col.output'],L['page.col.state']],Object.entries(st.outputs).map(([k,v])=>[k,word('onoff',v===true?'on':v===false?'off':v)]));
    rows('devices',[L['page.col.device'],L['page.col.status'],L['page.col.ok'],L['page.col.timeouts'],L['page.col.crc'],L['page.col.lastError'],L['page.col.rtt']],Object.entries(s.devices).map(([k,d])=>[k,word('status',d.status),d.counters.ok,d.counters.timeouts,d.counters.crcErrors,d.counters.lastError?d.counters.lastError.code:'',d.counters.lastRttMs!=null?d.counters.lastRttMs+' ms':'']));
    rows('buffer',['',''],[[L['page.buf.storage'],s.storage.state==='ok'?L['page.buf.ok']:tr('page.storageFailing',{code:s.storage.code,since:s.display.storageSince,dropped:s.storage.droppedTelemetry})],[L['page.buf.records'],num.format(s.buffer.telemetry+s.buffer.events)],[L['page.buf.oldest'],s.buffer.oldestAgeS!=null?tr('dur.s',{n:s.buffer.oldestAgeS}):'-'],[L['page.buf.evicted'],num.format(s.buffer.evicted.telemetry+s.buffer.evicted.events)],[L['page.buf.broker'],word('link',s.links.mqtt??'off')],[L['page.buf.hj212'],word('link',s.links.hj212??'off')],...(s.light?[[L['page.buf.light'],word('light',s.light)]]:[])]);
    draw(s.history||{},s.display.timeZone);
  }catch(e){document.getElementById('links').textContent=tr('page.noAnswer',{error:e.message});}
}
refresh();setInterval(refresh,2000);
</script></body></html>`;
}
