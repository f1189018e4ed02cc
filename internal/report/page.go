package report

// pageHTML is the report page: screen and print styles, summary, what
// changed, what needs attention, the growth chart, then the tables.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>Groups report · {{.SiteName}} · {{.Period}}</title>
<style>
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--up:#2f855a;--down:#c53030;--accent:#2b6cb0}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:var(--ink);line-height:1.4}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
.sub{color:var(--muted);margin-top:0}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid var(--line);border-radius:8px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.6rem}
.up{color:var(--up)}.down{color:var(--down)}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f7fa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:var(--accent)}
.flag{font-size:.8rem;padding:.05rem .4rem;border-radius:4px;background:#fefcbf;white-space:nowrap}
.bar-up{fill:var(--up)}.bar-down{fill:var(--down)}.axis{stroke:var(--muted)}
.label{font-size:12px;fill:var(--ink)}.count{font-size:12px;fill:var(--muted)}
footer{margin-top:2rem;color:var(--muted);font-size:.8rem}
svg{max-width:100%;height:auto}
@media (max-width:600px){body{margin:1rem auto}th,td{padding:.3rem .3rem}#groups th:nth-child(2),#groups td:nth-child(2),#groups th:nth-child(3),#groups td:nth-child(3){display:none}}
@media print{
  @page{size:A4;margin:14mm}
  body{margin:0;max-width:none;font-size:10pt}
  a{color:inherit;text-decoration:none}
  h2{break-after:avoid}
  tr,.card,svg{break-inside:avoid}
  thead{display:table-header-group}
  th{background:none}
  .card{border-color:#999}
}
</style>
</head>
<body>
<header>
<h1>Groups report · {{.SiteName}}</h1>
<p class="sub">{{if .Local}}<time datetime="{{.R.GeneratedAt.UTC.Format "2006-01-02T15:04:05Z07:00"}}">{{.Local}}</time> {{.Zone}}{{end}}{{if .PrevLocal}} · changes since {{.PrevLocal}}{{end}}</p>
</header>
<section class="cards">
<div class="card"><b><strong id="total-groups">{{.R.TotalGroups}}</strong></b>groups</div>
{{if .R.AllGroups}}<div class="card"><b id="total-members">{{.Members}}</b>members{{with .R.Changes}} <span class="{{if lt .MemberChange 0}}down{{else}}up{{end}}">({{signed .MemberChange}})</span>{{end}}</div>{{end}}
{{with .R.Changes}}<div class="card"><b id="groups-added">{{.AddedTotal}}</b>new groups</div><div class="card"><b id="groups-removed">{{.RemovedTotal}}</b>groups gone</div>{{end}}
<div class="card"><b id="flag-count">{{len .R.Flags}}</b>need attention</div>
</section>

<h2>Needs attention</h2>
{{if .R.Flags}}<table id="flags">
<thead><tr><th>Group</th><th class="num">Members</th><th class="num">Days idle</th><th>Why</th><th>Suggested action</th></tr></thead>
<tbody>
{{range .R.Flags}}<tr><td>{{.Name}}</td><td class="num">{{.MembersCount}}</td><td class="num">{{.IdleDays}}</td><td><span class="flag">{{flagLabel .Kind}}</span></td><td>{{.Action}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>Nothing needs attention.</p>{{end}}

{{if .R.AllGroups}}<h2>What changed</h2>
{{with .R.Changes}}{{if $.Growth}}<p>Member change per group since the previous report{{if $.GrowthCut}} (the {{len $.Growth}} largest changes){{end}}.</p>
<svg xmlns="http://www.w3.org/2000/svg" id="growth-chart" width="{{$.ChartW}}" height="{{$.ChartH}}" viewBox="0 0 {{$.ChartW}} {{$.ChartH}}" role="img" aria-label="Member change per group since the previous report">
<line class="axis" x1="{{$.Center}}" x2="{{$.Center}}" y1="0" y2="{{$.ChartH}}"/>
{{range $.Growth}}<g class="row"><text class="label" x="{{$.LabelW}}" dx="-8" y="{{.TextY}}" text-anchor="end">{{.Name}}</text><rect class="{{if .Up}}bar-up{{else}}bar-down{{end}}" x="{{.X}}" y="{{.Y}}" width="{{.Width}}" height="20"><title>{{.Name}}: {{.Label}}</title></rect><text class="count" x="{{if .Up}}{{add .X .Width}}{{else}}{{.X}}{{end}}" dx="{{if .Up}}4{{else}}-4{{end}}" y="{{.TextY}}" text-anchor="{{if .Up}}start{{else}}end{{end}}">{{.Label}}</text></g>
{{end}}</svg>{{else}}<p>No group's members changed since the previous report.</p>{{end}}
{{if .Added}}<p><strong>New groups:</strong> {{range $i, $g := .Added}}{{if $i}}, {{end}}{{$g.Name}} ({{$g.MembersCount}}){{end}}</p>{{end}}
{{if .Removed}}<p><strong>Gone:</strong> {{range $i, $g := .Removed}}{{if $i}}, {{end}}{{$g.Name}} ({{$g.MembersCount}}){{end}}</p>{{end}}
{{else}}<p>This is the site's first all-groups report: the next one shows what changed.</p>{{end}}

<h2>All groups</h2>
<table id="groups">
<thead><tr><th>Group</th><th>Privacy</th><th>Created</th><th>Last activity</th><th class="num">Members</th><th class="num">Change</th></tr></thead>
<tbody>
{{range .Groups}}<tr><td>{{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}{{if .New}} <span class="flag">new</span>{{end}}{{if .Flag}} <span class="flag">{{flagLabel .Flag}}</span>{{end}}</td><td>{{.Privacy}}</td><td>{{.Created}}</td><td>{{.Last}}</td><td class="num">{{.MembersCount}}</td><td class="num {{if lt .MemberChange 0}}down{{else if gt .MemberChange 0}}up{{end}}">{{if $.R.Changes}}{{if .New}}new{{else if .MemberChange}}{{signed .MemberChange}}{{else}}0{{end}}{{end}}</td></tr>
{{end}}</tbody>
</table>
{{end}}

<h2>Largest groups</h2>
{{if .Top}}<table id="top">
<thead><tr><th class="num">#</th><th>Group</th><th class="num">Members</th></tr></thead>
<tbody>
{{range $i, $g := .Top}}<tr><td class="num">{{inc $i}}</td><td>{{if $g.Link}}<a href="{{$g.Link}}">{{$g.Name}}</a>{{else}}{{$g.Name}}{{end}}</td><td class="num">{{$g.MembersCount}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No groups.</p>{{end}}

<h2>Least active groups{{if .IdleFilter}} (no activity for at least {{.R.IdleDays}} days){{end}}</h2>
{{if .Idle}}<table id="idle">
<thead><tr><th class="num">#</th><th>Group</th><th class="num">Members</th><th>Last activity</th><th class="num">Days idle</th></tr></thead>
<tbody>
{{range .Idle}}<tr><td class="num">{{.Rank}}</td><td>{{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</td><td class="num">{{.MembersCount}}</td><td>{{.LastActivity}}</td><td class="num">{{.IdleDays}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No idle groups.</p>{{end}}

<footer>Report {{.R.CommandID}} · made with {{.R.WixCalls}} Wix API calls · generated by groupflow</footer>
</body>
</html>
`
